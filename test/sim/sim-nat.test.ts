import { describe, it, expect, vi } from 'vitest'
import { parseScenario, loadScenario, ScenarioError, type Scenario } from '../../sim/scenario.ts'
import { runOnce, runScenario } from '../../sim/run.ts'
import { renderReport } from '../../sim/report/index.ts'
import { crossCheckProblem } from '../../sim/crosscheck.ts'
import { DIRECT } from '../../sim/nat.ts'
import { World } from '../../sim/world.ts'

/** 60 nodes, half behind NAT, 4 relays; quick to run. */
function natWorld (nat: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Scenario {
  return parseScenario({
    name: 'nat-small',
    seed: 11,
    nodes: 60,
    durationS: 120,
    topology: { kind: 'uniform', latencyMs: [5, 40], jitter: 0.2 },
    agents: { hostShare: 0.6, perHost: 1, types: ['arithmetic', 'sort', 'translate'] },
    tasks: { count: 60, requesters: 3, trusted: 0.3 },
    policies: ['linucb'],
    nat: { fraction: 0.5, relays: 4, holePunch: 0.5, relayExtraMs: [10, 40], ...nat },
    ...extra
  })
}

describe('NAT: the scenario field', () => {
  const bad = (nat: unknown, extra: Record<string, unknown> = {}): string => {
    try {
      parseScenario({ name: 'x', nodes: 10, tasks: { requesters: 2 }, nat, ...extra })
    } catch (err) {
      expect(err).toBeInstanceOf(ScenarioError)
      return (err as Error).message
    }
    throw new Error('accepted')
  }

  it('refuses bad values with their path and what is expected', () => {
    expect(bad({ fraction: 1.5 })).toBe('nat.fraction must be a number >= 0 <= 1, got 1.5')
    expect(bad({})).toBe('nat.fraction is required')
    expect(bad(null)).toMatch(/^nat must be a map/)
    expect(bad({ fraction: 0.5, holepunch: 1 })).toBe('unknown field nat.holepunch')
    expect(bad({ fraction: 0.5, holePunch: -0.1 })).toBe('nat.holePunch must be a number >= 0 <= 1, got -0.1')
    expect(bad({ fraction: 0.5, relays: 0 })).toBe('nat.relays must be an integer >= 1, got 0')
    expect(bad({ fraction: 0.5, relays: 2.5 })).toBe('nat.relays must be an integer >= 1, got 2.5')
    expect(bad({ fraction: 0.5, relays: 6 })).toBe('nat.relays must be at most the 5 public nodes (10 nodes, 0.5 behind NAT), got 6')
    expect(bad({ fraction: 0.5, relayExtraMs: [40, 10] })).toMatch(/^nat.relayExtraMs must be \[low, high\] with low <= high, both >= 0/)
    expect(bad({ fraction: 1 })).toMatch(/^nat.fraction must leave at least one public node to relay/)
  })

  it('fills defaults; without the block there is no NAT at all', () => {
    const s = parseScenario({ name: 'x', nodes: 100, nat: { fraction: 0.7 } })
    expect(s.nat).toEqual({ fraction: 0.7, relays: 20, holePunch: 0.7, relayExtraMs: [10, 40] })
    expect(parseScenario({ name: 'x', nodes: 10, tasks: { requesters: 2 }, nat: { fraction: 0.8 } }).nat?.relays).toBe(2)
    expect('nat' in parseScenario({ name: 'x' })).toBe(false)
    expect(loadScenario('nat-10k').nat).toEqual({ fraction: 0.7, relays: 20, holePunch: 0.7, relayExtraMs: [10, 40] })
  })

  it('the cross-check refuses NAT (its real peers are all dialable)', () => {
    expect(crossCheckProblem(natWorld({}, { nodes: 20 }))).toMatch(/NAT is simulated only/)
    expect(crossCheckProblem(natWorld({ fraction: 0 }, { nodes: 20 }))).toBeUndefined()
  })
})

describe('NAT: the network model', () => {
  it('assigns NAT by share, relays among public non-requester nodes, one reservation per NAT\'d node', () => {
    const world = new World({ scenario: natWorld(), policy: 'linucb' })
    const nat = world.nat!
    expect(nat.natted.reduce((s, x) => s + x, 0)).toBe(30)
    expect(nat.relays).toHaveLength(4)
    for (const r of nat.relays) expect([nat.natted[r], world.requesters.has(r)]).toEqual([0, false])
    for (let i = 0; i < 60; i++) expect(nat.relays.includes(nat.relayOf[i]!)).toBe(nat.natted[i] === 1)
  })

  it('a relayed message takes both legs plus forwarding, and the same pair goes direct, faster, once upgraded', () => {
    // No jitter, fixed forwarding: each delay is exact.
    const s = natWorld({ holePunch: 1, relayExtraMs: [20, 20] }, { topology: { kind: 'uniform', latencyMs: [5, 40], jitter: 0 } })
    const world = new World({ scenario: s, policy: 'linucb' })
    const nat = world.nat!
    const scheduled: Array<{ at: number, payload: unknown }> = []
    const at = world.engine.at.bind(world.engine)
    vi.spyOn(world.engine, 'at').mockImplementation((time, kind, a, payload) => { scheduled.push({ at: time, payload }); at(time, kind, a, payload) })
    const marker = new Uint8Array([0xff]) // not an RPC: the receiver drops it
    const arrival = (): number => { const e = scheduled.findLast(x => (x.payload as { data?: unknown } | undefined)?.data === marker)!; return e.at - world.engine.now }
    const ser = world.net.delay(0, 0, 1, () => 0.5) - world.net.baseLatency(0, 0)
    const sources = [...Array(60).keys()].filter(i => nat.natted[i] === 0 && !nat.relays.includes(i))
    const targets = [...Array(60).keys()].filter(i => nat.natted[i] === 1)
    let relayedTotal = 0
    let directTotal = 0
    for (let k = 0; k < 20; k++) {
      const from = sources[k % sources.length]!
      const to = targets[(7 * k) % targets.length]!
      const relay = nat.relayOf[to]!
      world.engine.now = 1000 * (k + 1)
      expect(world.send(from, to, 'rpc', marker)).toBe(true)
      const relayed = arrival()
      expect(relayed).toBeCloseTo(world.net.baseLatency(from, relay) + 20 + world.net.baseLatency(relay, to) + 2 * ser, 9)
      world.engine.now += 500 // past the hole punch
      expect(world.send(from, to, 'rpc', marker)).toBe(false)
      const direct = arrival()
      expect(direct).toBeCloseTo(world.net.baseLatency(from, to) + ser, 9)
      relayedTotal += relayed
      directTotal += direct
    }
    expect(relayedTotal).toBeGreaterThan(directTotal)
    // A NAT'd node dials a public one directly; two NAT'd nodes meet through the target's relay.
    expect(nat.route(targets[0]!, sources[0]!, 100_000)).toBe(DIRECT)
    expect(nat.route(targets[1]!, targets[2]!, 100_000)).toBe(nat.relayOf[targets[2]!])
  })

  it('clients of a relay that goes down re-reserve on another; their relayed connections close', () => {
    const world = new World({ scenario: natWorld({ holePunch: 0 }), policy: 'linucb' })
    const nat = world.nat!
    const relay = nat.relays[0]!
    const clients = [...Array(60).keys()].filter(i => nat.relayOf[i] === relay)
    expect(clients.length).toBeGreaterThan(0)
    const from = [...Array(60).keys()].find(i => nat.natted[i] === 0 && !nat.relays.includes(i))!
    expect(nat.route(from, clients[0]!, 0)).toBe(relay)
    world.crash(relay)
    for (const c of clients) expect(nat.relays.filter(r => r !== relay)).toContain(nat.relayOf[c])
    expect(nat.route(from, clients[0]!, 1)).toBe(nat.relayOf[clients[0]!])
  })
})

describe('NAT: a run', () => {
  const { summary } = runOnce(natWorld(), 'linucb')
  const nat = summary.nat!

  it('relays forward bytes, counted only at relay nodes; tasks still complete', () => {
    const world = new World({ scenario: natWorld(), policy: 'linucb' })
    world.run()
    const n = world.nat!
    for (let i = 0; i < 60; i++) if (!n.relays.includes(i)) expect(n.relayBytes[i]).toBe(0)
    expect(n.relays.every(r => n.relayBytes[r]! > 0)).toBe(true)
    expect(nat.relayBytesMean * nat.relays).toBeCloseTo(n.relays.reduce((s, r) => s + n.relayBytes[r]!, 0), 6)
    expect(nat.relayBytesMax).toBeGreaterThanOrEqual(nat.relayBytesMean)
    expect(nat.wireBytesPerTask).toBeGreaterThan(summary.bytesPerTask)
    expect(nat.relayedShare).toBeGreaterThan(0)
    expect(nat.relayedShare).toBeLessThan(1)
    expect(nat.tasksRelayed).toBeGreaterThan(0)
    expect(summary.successRate).toBeGreaterThan(0.8)
    expect(summary.unfinished).toBe(0)
  })

  it('hole punching 1: every relayed pair is upgraded; 0: none is, and every gossip hop into a NAT\'d node is relayed', () => {
    const always = runOnce(natWorld({ holePunch: 1 }), 'linucb').summary.nat!
    const never = runOnce(natWorld({ holePunch: 0 }), 'linucb').summary.nat!
    expect(always.pairsRelayed).toBeGreaterThan(10)
    expect(always.pairsUpgraded).toBe(always.pairsRelayed)
    expect(always.gossipRelayedShare).toBe(0)
    expect(never.pairsRelayed).toBeGreaterThan(10)
    expect(never.pairsUpgraded).toBe(0)
    expect(never.gossipRelayedShare).toBe(1)
    expect(never.messagesRelayed).toBeGreaterThan(3 * always.messagesRelayed)
    expect(never.relayBytesMean).toBeGreaterThan(always.relayBytesMean)
  })

  it('the same seed gives byte-identical reports, with the NAT table and metrics', () => {
    const a = renderReport(runScenario(natWorld()).report)
    const b = renderReport(runScenario(natWorld()).report)
    expect([...a.keys()]).toEqual([...b.keys()])
    for (const [file, text] of a) expect(b.get(file)).toBe(text)
    expect(a.get('nat.csv')).toBeDefined()
    expect(JSON.parse(a.get('summary.json')!).summary['linucb.nat.relayBytesMean']).toBeGreaterThan(0)
  })

  it('fraction 0 runs exactly as without NAT, only adding the NAT metrics', () => {
    const { nat: _, ...scenario } = natWorld()
    const plain = runScenario(scenario).report
    const zero = runScenario(natWorld({ fraction: 0 })).report
    const without = Object.fromEntries(Object.entries(zero.summary).filter(([k]) => !k.includes('.nat.')))
    expect(without).toEqual(plain.summary)
    expect(zero.summary['linucb.nat.messagesRelayed']).toBe(0)
    expect(plain.tables.map(t => t.id)).not.toContain('nat')
    expect(plain.notes.join(' ')).not.toMatch(/NAT:/)
  })
})
