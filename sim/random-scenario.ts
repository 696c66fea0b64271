/**
 * The `random` scenario: size, topology, loss, agents, task mix and faults all drawn from the
 * seed (TigerBeetle's VOPR draws its cluster and fault rates the same way), so that running many
 * seeds (`agentmesh sim random --seeds 100`) explores combinations no hand-written scenario has.
 * Byzantine committee members stay under a tenth of the nodes: safety is promised below a third of
 * a committee's power, and a committee that draws more is counted apart, not failed.
 */
import { mulberry32 } from '../protocols/random.ts'
import { POLICY_NAMES } from '../protocols/routing/index.ts'
import { parseScenario, type Scenario, type ScenarioOverrides } from './scenario.ts'

export function randomScenario (overrides: ScenarioOverrides = {}): Scenario {
  const seed = overrides.seed ?? 1
  // Its own stream: the scenario's shape, not the run, comes from it (the run uses `seed` too).
  const rand = mulberry32(seed ^ 0x5eed5)
  const between = (lo: number, hi: number): number => lo + (hi - lo) * rand()
  const int = (lo: number, hi: number): number => Math.floor(between(lo, hi + 1))
  const round = (x: number, digits = 3): number => Number(x.toFixed(digits))
  const chance = (p: number): boolean => rand() < p
  const durationS = int(120, 600)
  const faults: unknown[] = []
  if (chance(0.5)) faults.push({ kind: 'churn', perMinute: int(1, 30), downS: [int(5, 30), int(31, 120)] })
  if (chance(0.4)) faults.push({ kind: 'crash', at: int(0, durationS), fraction: round(between(0, 0.2)) })
  if (chance(0.3)) {
    const at = int(0, durationS - 1)
    faults.push({ kind: 'partition', at, healAt: int(at + 1, durationS), groups: int(2, 3) })
  }
  for (const kind of ['drop', 'duplicate', 'delay'] as const) if (chance(0.3)) faults.push({ kind, rate: round(between(0, 0.1)) })
  if (chance(0.5)) faults.push({ kind: 'byzantine-members', fraction: round(between(0, 0.1)), behaviour: ['silent', 'equivocate', 'double-vote', 'junk'][int(0, 3)] })
  if (chance(0.4)) faults.push({ kind: 'wrong-answers', fraction: round(between(0, 0.3)), rate: round(between(0.2, 1)) })
  if (chance(0.3)) faults.push({ kind: 'sybil', count: int(1, 5) })
  const latencyLow = int(5, 50)
  return parseScenario({
    name: 'random',
    description: `Drawn from seed ${seed}: size, topology, loss, agents, tasks and faults.`,
    seed,
    nodes: int(20, 200),
    durationS,
    topology: { kind: 'uniform', latencyMs: [latencyLow, latencyLow + int(10, 250)], jitter: round(between(0, 0.5)) },
    network: { loss: round(between(0, 0.05)) },
    agents: { hostShare: round(between(0.3, 0.8)), perHost: int(1, 3) },
    tasks: { count: int(50, 200), requesters: int(1, 5), trusted: round(between(0, 0.6)) },
    policies: [POLICY_NAMES[int(0, POLICY_NAMES.length - 1)]],
    faults,
    // Drawn last, so the draws above keep the shapes they had before clocks were drawn. One seed in
    // four spreads clocks past the tables' 60 s allowance: some hosts' records then arrive
    // "issued in the future" and are ignored (and counted), as on a real network.
    clocks: chance(0.25) ? { offsetMs: int(60_000, 180_000), driftPpm: int(0, 500) } : { offsetMs: int(0, 2000), driftPpm: int(0, 500) }
  }, overrides)
}
