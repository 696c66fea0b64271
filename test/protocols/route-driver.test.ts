// The routing loop (protocols/routing/route-driver.ts), which the peer's router and the simulator
// both run, against a scripted I/O: what it searches, whom it beacons, and what it decides from.
import { describe, it, expect } from 'vitest'
import { mulberry32 } from '../../protocols/random.ts'
import { createPolicy, routeRequest, RoutingCore, type IndexSearch, type LiveStates, type RouteDecision, type RouteIo, type ScreenHit } from '../../protocols/routing/index.ts'

const H1 = '12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp'
const H2 = '12D3KooWGRUVh8fLsHGx1UGVVHZhMBvJ7pkLqZuEEbFh9NB7PRVB'
const H3 = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'
const hit = (agent: string, similarity: number): ScreenHit => ({ agent, similarity, cost: 1, latencyMs: 40 })
const up = { load: 0.1, latencyMs: 30, available: true }

/** An index holding `hits` (searched through `keep`), a beacon the test answers, a clock at 1000. */
function scripted (hits: ScreenHit[], extra: Partial<RouteIo> = {}) {
  const searches: string[][] = []
  const beacons: Array<{ agents: string[], deadlineMs: number, late: (host: string, ms: number) => void, done: (live: LiveStates) => void }> = []
  const io: RouteIo = {
    now: () => 1000,
    random: mulberry32(7),
    topK: 10,
    index: (_text, _request, exclude, _k, done) => {
      const search: IndexSearch = keep => { const found = hits.filter(h => !exclude.has(h.agent) && keep(h.agent)); searches.push(found.map(h => h.agent)); return found }
      done(search)
    },
    beacon: (agents, deadlineMs, late, done) => { beacons.push({ agents, deadlineMs, late, done }) },
    ...extra
  }
  return { io, searches, beacons }
}

function route (core: RoutingCore, io: RouteIo, exclude: string[] = []): { decisions: RouteDecision[], errors: Error[] } {
  const out = { decisions: [] as RouteDecision[], errors: [] as Error[] }
  routeRequest(core, io, { text: 'multiply two numbers' }, exclude, d => out.decisions.push(d), e => out.errors.push(e))
  return out
}

describe('the routing loop', () => {
  it('beacons the shortlist at the core\'s deadline, decides on the live states, and a silent host sits out the next screening', () => {
    const core = new RoutingCore({ policy: createPolicy('linucb') })
    const s = scripted([hit(`${H1}/calc`, 0.9), hit(`${H2}/calc`, 0.85), hit(`${H3}/calc`, 0.2)])
    const first = route(core, s.io, [`${H3}/other`])
    // H3 is below 0.6 of the best similarity: screened out of the beacon.
    expect(s.beacons[0]!.agents.sort()).toEqual([`${H1}/calc`, `${H2}/calc`].sort())
    expect(s.beacons[0]!.deadlineMs).toBe(core.beaconDeadline([`${H1}/calc`]))
    expect(first.decisions).toEqual([])
    s.beacons[0]!.done({ states: new Map([[`${H2}/calc`, up]]), skipped: [`${H1}/calc`], rtts: new Map([[H2, 20]]) })
    expect(first.decisions[0]!.candidates.map(c => c.agent)).toEqual([`${H2}/calc`])
    // H1 missed its beacon: left out of screening now; H2 answered in 20 ms, which sets its deadline.
    route(core, s.io)
    expect(s.searches[1]).toEqual([`${H2}/calc`, `${H3}/calc`])
    expect(s.beacons[1]!.deadlineMs).toBe(150)
  })

  it('a late beacon reply tunes the host\'s deadline and brings it back into screening', () => {
    const core = new RoutingCore({ policy: createPolicy('linucb') })
    const s = scripted([hit(`${H1}/calc`, 0.9)])
    route(core, s.io)
    s.beacons[0]!.done({ states: new Map(), skipped: [`${H1}/calc`] })
    expect(core.available(`${H1}/calc`, 1000)).toBe(false)
    s.beacons[0]!.late(H1, 400)
    expect(core.available(`${H1}/calc`, 1000)).toBe(true)
    expect(core.beaconDeadline([`${H1}/calc`])).toBe(825)
  })

  it('an answer no longer wanted decides nothing: no choice, no silent host, no random draw', () => {
    const core = new RoutingCore({ policy: createPolicy('linucb') })
    let draws = 0
    const random = mulberry32(3)
    const s = scripted([hit(`${H1}/calc`, 0.9), hit(`${H2}/calc`, 0.8)], { wanted: () => false, random: () => { draws++; return random() } })
    const out = route(core, s.io)
    const before = draws
    s.beacons[0]!.done({ states: new Map([[`${H2}/calc`, up]]), skipped: [`${H1}/calc`] })
    expect(out.decisions).toEqual([])
    expect(draws).toBe(before)
    expect(core.available(`${H1}/calc`, 1000)).toBe(true)
  })

  it('newcomers crowding the nearest hits make a second search for established agents only', () => {
    const fresh = new Set([`${H1}/calc`, `${H2}/calc`])
    const core = new RoutingCore({ policy: createPolicy('linucb'), newcomer: a => fresh.has(a) })
    const s = scripted([hit(`${H1}/calc`, 0.95), hit(`${H2}/calc`, 0.94), hit(`${H3}/calc`, 0.9)], { eligible: a => a !== `${H2}/calc` })
    route(core, s.io)
    // H2 is not eligible here (say, its host is banned); the established-only search keeps H3.
    expect(s.searches).toEqual([[`${H1}/calc`, `${H3}/calc`], [`${H3}/calc`]])
  })

  it('a request without text screens by skills alone, through the same gates', () => {
    const core = new RoutingCore({ policy: createPolicy('linucb') })
    const asked: string[] = []
    const s = scripted([], {
      bySkills: (_request, exclude, keep) => [hit(`${H1}/calc`, 1), hit(`${H2}/calc`, 1)].filter(h => !exclude.has(h.agent) && keep(h.agent)).map(h => { asked.push(h.agent); return h })
    })
    routeRequest(core, s.io, { skills: ['calc'] }, [`${H2}/calc`], () => {}, () => {})
    expect(asked).toEqual([`${H1}/calc`])
    expect(s.searches).toEqual([])
    expect(s.beacons[0]!.agents).toEqual([`${H1}/calc`])
  })

  it('an embedding or beacon failure reaches the caller once, and nothing is decided', () => {
    const core = new RoutingCore({ policy: createPolicy('linucb') })
    const broken = scripted([hit(`${H1}/calc`, 0.9)], { index: (_t, _r, _e, _k, _done, fail) => { fail(new Error('embedder down')) } })
    const a = route(core, broken.io)
    expect(a.errors.map(e => e.message)).toEqual(['embedder down'])
    expect(broken.beacons).toEqual([])
    const silent = scripted([hit(`${H1}/calc`, 0.9)], { beacon: (_a, _ms, _late, _done, fail) => { fail(new Error('no streams')) } })
    const b = route(core, silent.io)
    expect([b.errors.map(e => e.message), b.decisions]).toEqual([['no streams'], []])
  })

  it('a policy that throws while deciding fails that route through `fail` (a peer would otherwise leave the route pending)', () => {
    const policy = createPolicy('linucb')
    policy.select = () => { throw new Error('matrix is not positive definite') }
    const core = new RoutingCore({ policy })
    const s = scripted([hit(`${H1}/calc`, 0.9)])
    const out = route(core, s.io)
    s.beacons[0]!.done({ states: new Map([[`${H1}/calc`, up]]), skipped: [] })
    expect([out.errors.map(e => e.message), out.decisions]).toEqual([['matrix is not positive definite'], []])
  })
})
