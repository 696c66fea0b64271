import { describe, it, expect } from 'vitest'
import { BeaconRound, type BeaconEffect } from '../../protocols/beacon/index.ts'
import { ReputationBook, wantsCanary } from '../../protocols/consensus/index.ts'
import { mulberry32 } from '../../protocols/random.ts'
import { createPolicy, RoutingCore, type BeaconState, type ScreenHit } from '../../protocols/routing/index.ts'

const H1 = '12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp'
const H2 = '12D3KooWGRUVh8fLsHGx1UGVVHZhMBvJ7pkLqZuEEbFh9NB7PRVB'
const live = (load = 0.2): BeaconState => ({ load, latencyMs: 40, available: true })
const hit = (agent: string, similarity: number, cost = 1): ScreenHit => ({ agent, similarity, cost, latencyMs: 40 })

describe('routing core: beacon deadlines', () => {
  it('a never-measured host gets the unknown deadline; a measured one 2 × RTT + 25 ms, within the bounds', () => {
    const core = new RoutingCore({ policy: createPolicy('linucb') })
    expect(core.beaconDeadline([`${H1}/calc`])).toBe(600)
    core.observeRtt(H1, 10)
    expect(core.beaconDeadline([`${H1}/calc`])).toBe(150) // 45 ms, raised to the 150 ms floor
    core.observeRtt(H2, 300)
    expect(core.beaconDeadline([`${H1}/calc`, `${H2}/sort`])).toBe(625) // the farthest host sets it
    core.observeRtt(H2, 2000)
    expect(core.beaconDeadline([`${H2}/sort`])).toBe(1000) // smoothed 725 ms → 1475, capped
  })

  it('a host that missed a beacon sits out screening until it answers again (even late)', () => {
    const core = new RoutingCore({ policy: createPolicy('linucb') })
    const screened = [hit(`${H1}/calc`, 0.9), hit(`${H2}/calc`, 0.8)]
    core.decide(screened, new Map([[`${H2}/calc`, live()]]), [`${H1}/calc`], mulberry32(1), 1000)
    expect(core.available(`${H1}/calc`, 1000)).toBe(false)
    expect(core.available(`${H1}/calc`, 11_001)).toBe(true) // 10 s later
    core.observeRtt(H1, 700) // its late reply arrived
    expect(core.available(`${H1}/calc`, 1000)).toBe(true)
    expect(core.beaconDeadline([`${H1}/calc`])).toBe(1000)
  })

  it('a beacon round reports every answering host\'s round trip, and a late reply as `late`', () => {
    const round = new BeaconRound(7, [`${H1}/calc`, `${H2}/sort`], 150)
    round.start(1000)
    const reply = (agent: string): { t: 'beacon-reply', id: number, states: Array<{ agent: string, load: number, queue: number, latencyMs: number, available: boolean }> } =>
      ({ t: 'beacon-reply', id: 7, states: [{ agent, load: 0, queue: 0, latencyMs: 5, available: true }] })
    expect(round.reply(H1, reply('calc'), 1040)).toEqual([])
    const done = round.tick().find((e): e is Extract<BeaconEffect, { type: 'done' }> => e.type === 'done')!
    expect(done.rtts).toEqual(new Map([[H1, 40]]))
    expect(done.skipped).toEqual([`${H2}/sort`])
    expect(round.reply(H2, reply('sort'), 1400)).toEqual([{ type: 'late', host: H2, rttMs: 400 }])
    expect(round.reply(H2, reply('sort'), 1500)).toEqual([]) // once
  })
})

describe('routing core: screening and decisions', () => {
  it('LinUCB beacons what it learned is good even when closer matches rank above it; the baselines take the most similar, Symphony its own screen', () => {
    // Five hosts' agents of one kind (same local name, so one task-type feature).
    const agents = ['a', 'b', 'c', 'd', 'e'].map(h => `host-${h}/calc`)
    const hits = agents.map((agent, i) => hit(agent, 0.9 - 0.01 * i))
    const core = new RoutingCore({ policy: createPolicy('linucb'), topL: 2 })
    const rng = mulberry32(3)
    // Teach it: e (the least similar) always succeeds fast; the others fail.
    for (let round = 0; round < 60; round++) {
      for (const agent of agents) {
        const d = core.decide([hits.find(h => h.agent === agent)!], new Map([[agent, live()]]), [], rng, round)
        core.outcome(d.candidates[0]!.agent, agent === 'host-e/calc' ? { ok: true, latencyMs: 30 } : { ok: false, latencyMs: 2000 }, round)
      }
    }
    expect(core.shortlist(hits, rng).map(h => h.agent)).toContain('host-e/calc')
    const greedy = new RoutingCore({ policy: createPolicy('greedy-similarity'), topL: 2 })
    expect(greedy.shortlist(hits, rng).map(h => h.agent)).toEqual(agents.slice(0, 2))
    // Symphony-Coord screens by its own composite score with its own L = 3; equal states and
    // success priors leave similarity to decide.
    const symphony = new RoutingCore({ policy: createPolicy('symphony'), topL: 2 })
    expect(symphony.shortlist(hits, rng).map(h => h.agent)).toEqual(agents.slice(0, 3))
  })

  it('LinUCB screening: Sybil newcomers and one host\'s near-duplicates take at most one slot each while others can fill them', () => {
    // Ten fresh Sybil hosts match best; two honest hosts, one of them with three near-duplicates.
    const sybils = Array.from({ length: 10 }, (_, i) => hit(`sybil-${i}/calc`, 0.99 - 0.001 * i, 0.01))
    const honest = [hit('host-a/calc', 0.9), hit('host-a/calc2', 0.9), hit('host-a/calc3', 0.9), hit('host-b/calc', 0.85)]
    const vetted = new Set(['host-a/calc', 'host-a/calc2', 'host-a/calc3'])
    const core = new RoutingCore({ policy: createPolicy('linucb'), topL: 3, newcomer: a => !vetted.has(a) })
    // host-b has passed no check but answered a beacon: it is not a newcomer.
    core.observeRtt('host-b', 20)
    const picked = core.shortlist([...sybils, ...honest], mulberry32(5)).map(h => h.agent)
    expect(picked).toHaveLength(3)
    expect(picked.filter(a => a.startsWith('sybil-'))).toHaveLength(1)
    expect(picked.filter(a => a.startsWith('host-a/'))).toHaveLength(1)
    expect(picked).toContain('host-b/calc')
    // Nobody else near enough: the caps give way and the slots are still filled.
    const alone = core.shortlist(sybils.slice(0, 3), mulberry32(5)).map(h => h.agent)
    expect(alone).toHaveLength(3)
    // The index's nearest k can be all Sybils: the established query's hits are merged in, by similarity.
    expect(core.wantsEstablished(sybils.slice(0, 3))).toBe(true)
    expect(core.wantsEstablished([...sybils.slice(0, 3), ...honest])).toBe(false) // three established among them
    expect(new RoutingCore({ policy: createPolicy('linucb') }).wantsEstablished(sybils)).toBe(false)
    expect(core.isNewcomer('sybil-0/calc')).toBe(true)
    expect(core.isNewcomer('host-b/calc')).toBe(false)
    const merged = core.mergeScreens(sybils.slice(0, 3), [honest[3]!, sybils[0]!])
    expect(merged.map(h => h.agent)).toEqual(['sybil-0/calc', 'sybil-1/calc', 'sybil-2/calc', 'host-b/calc'])
    expect(core.mergeScreens(sybils.slice(0, 2), [sybils[1]!])).toEqual(sybils.slice(0, 2))
    // Off by default for callers that say nothing of newcomers (per host still one while others can fill).
    const plain = new RoutingCore({ policy: createPolicy('linucb'), topL: 3 })
    expect(plain.shortlist([...sybils.slice(0, 2), ...honest], mulberry32(5)).map(h => h.agent).filter(a => a.startsWith('sybil-'))).toHaveLength(2)
  })

  it('keeps agents near the best match only, and one task-type feature per request', () => {
    const core = new RoutingCore({ policy: createPolicy('greedy-similarity'), topL: 3 })
    const hits = [hit(`${H1}/calc`, 0.9), hit(`${H2}/calc`, 0.6), hit(`${H2}/poet`, 0.3)]
    expect(core.shortlist(hits, mulberry32(1)).map(h => h.agent)).toEqual([`${H1}/calc`, `${H2}/calc`]) // 0.3 < 0.6 × 0.9
    expect(core.taskType(hits)).toBe('calc')
    expect(core.taskType([])).toBe('')
  })

  it('an outcome teaches the decision it belongs to; a fallback that was never chosen teaches nothing', () => {
    const policy = createPolicy('linucb')
    const core = new RoutingCore({ policy })
    const screened = [hit(`${H1}/calc`, 0.9), hit(`${H2}/calc`, 0.85)]
    const d = core.decide(screened, new Map([[`${H1}/calc`, live()], [`${H2}/calc`, live()]]), [], mulberry32(2), 0)
    expect(policy.pending).toBe(1)
    const fallback = d.candidates[1]!.agent
    core.outcome(fallback, { ok: true, latencyMs: 10 }, 1)
    expect(policy.pending).toBe(1)
    core.outcome(d.candidates[0]!.agent, { ok: true, latencyMs: 10 }, 1)
    expect(policy.pending).toBe(1) // answered; waits for agreement
    core.agreement(d.candidates[0]!.agent, true, 2)
    expect(policy.pending).toBe(0)
  })
})

describe('canaries: when to spot-check', () => {
  const agent = `${H1}/calc`
  it('every newcomer twice, one at a time; then at the rate; off means off', () => {
    const book = new ReputationBook()
    const never = (): number => 0.99
    expect(wantsCanary({ rate: 0.05 }, book, agent, never)).toBe(true)
    expect(wantsCanary({ rate: 0.05 }, book, agent, never, 1)).toBe(false) // one already in flight
    book.canary({ id: 'c1', agent, correct: true })
    book.canary({ id: 'c2', agent, correct: false })
    expect(wantsCanary({ rate: 0.05 }, book, agent, never)).toBe(false) // judged twice: at the rate now
    expect(wantsCanary({ rate: 0.05 }, book, agent, () => 0.01)).toBe(true)
    expect(wantsCanary({ rate: 0 }, new ReputationBook(), agent, () => 0)).toBe(false)
    expect(wantsCanary({ rate: 0, newcomerChecks: 1 }, new ReputationBook(), agent, never)).toBe(true)
  })
})

describe('routing core: agents that failed their checks come last', () => {
  const agents = ['a', 'b', 'c', 'd'].map(h => `host-${h}/calc`)
  const hits = agents.map((agent, i) => hit(agent, 0.9 - 0.01 * i))
  const states = new Map(agents.map(a => [a, live()]))

  it('a suspended agent is neither shortlisted while others can fill the L slots nor chosen, whatever its exploration bonus', () => {
    const suspended = new Set(['host-a/calc', 'host-b/calc'])
    const core = new RoutingCore({ policy: createPolicy('linucb'), topL: 2, reputation: () => 0.5, suspended: a => suspended.has(a) })
    const rng = mulberry32(5)
    for (let i = 0; i < 50; i++) {
      const screened = core.shortlist(hits, rng)
      expect(screened.map(h => h.agent).sort()).toEqual(['host-c/calc', 'host-d/calc'])
      // shown all four anyway (a driver that skips screening): the choice is never suspended, and they follow as last resorts
      const d = core.decide(hits, states, [], rng, i)
      expect(suspended.has(d.candidates[0]!.agent)).toBe(false)
      expect(d.candidates.slice(2).map(c => c.agent).sort()).toEqual(['host-a/calc', 'host-b/calc'])
      expect((d.explanation.lastResorts as string[]).sort()).toEqual(['host-a/calc', 'host-b/calc'])
      core.outcome(d.candidates[0]!.agent, { ok: false, latencyMs: 5000 }, i) // the good ones keep failing: still no suspended choice
    }
  })

  it('reputation 0 demotes too; when every agent failed its checks they are still routed; Symphony-Coord runs as published', () => {
    const core = new RoutingCore({ policy: createPolicy('linucb'), topL: 4, reputation: a => a === 'host-c/calc' ? 0 : 0.5 })
    const d = core.decide(hits, states, [], mulberry32(1), 0)
    expect(d.candidates.at(-1)!.agent).toBe('host-c/calc')
    const all = new RoutingCore({ policy: createPolicy('linucb'), topL: 4, suspended: () => true })
    expect(all.decide(hits, states, [], mulberry32(1), 0).candidates).toHaveLength(4)
    expect(all.shortlist(hits, mulberry32(1))).toHaveLength(4)
    // Symphony-Coord's selector has no notion of our suspension: its choice is the same either way
    const sym = (suspended: boolean): string[] => new RoutingCore({ policy: createPolicy('symphony'), topL: 4, suspended: () => suspended, reputation: a => a === 'host-a/calc' ? 0 : 0.5 })
      .decide(hits, states, [], mulberry32(2), 0).candidates.map(c => c.agent)
    expect(sym(true)).toEqual(sym(false))
  })
})
