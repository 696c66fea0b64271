import { describe, it, expect } from 'vitest'
import { crossCheck, crossCheckProblem } from '../../sim/crosscheck.ts'
import { loadScenario, parseScenario } from '../../sim/scenario.ts'

describe('simulator cross-check against real peers', () => {
  it('the same population and task stream on 16 real libp2p peers (TCP on 127.0.0.1) agree with the simulation within tolerance', async () => {
    const s = parseScenario({
      name: 'cross-check',
      seed: 3,
      nodes: 16,
      durationS: 200,
      topology: { kind: 'uniform', latencyMs: [5, 30], jitter: 0.2 },
      agents: { hostShare: 0.8, perHost: 1, types: ['arithmetic', 'sort', 'translate'] },
      tasks: { count: 90, requesters: 2, trusted: 0.3 },
      policies: ['linucb'],
      faults: [{ kind: 'wrong-answers', fraction: 0.2, rate: 0.5 }, { kind: 'sybil', count: 1 }]
    })
    // On a starved machine (another process holding both cores) crossCheck repeats the real run
    // five times slower once: the comparison is of the protocol, not of the machine's load.
    const check = await crossCheck(s)
    const rows = new Map(check.table.rows.map(r => [r[0], r]))
    expect(check.real.summary.tasks).toBe(90)
    expect(check.real.summary.done).toBeGreaterThan(20) // the real mesh did real work
    expect(check.real.summary.consensusCommitted).toBeGreaterThan(0) // with real certificates
    expect(rows.get('safety violations')?.[2]).toBe(0)
    expect(check.agrees, JSON.stringify(check.table.rows)).toBe(true)
  }, 360_000)

  it('says why a scenario cannot be cross-checked', () => {
    expect(crossCheckProblem(loadScenario('scale-10k'))).toMatch(/at most 50 nodes \(try --nodes 20\)/)
    expect(crossCheckProblem(loadScenario('partition-heal', { nodes: 20 }))).toMatch(/agent faults only .* also has partition/)
    expect(crossCheckProblem(loadScenario('byzantine-sweep', { nodes: 20 }))).toMatch(/byzantine-members|sweep/)
  })
})
