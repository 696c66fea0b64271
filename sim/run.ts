/**
 * Runs a scenario: once per routing policy (same seed, so the same agents, tasks and faults),
 * and for a sweep once per faulty fraction; then turns the runs into a report (summary, tables,
 * plots). Wall time and memory are not in the report: the same scenario and seed give the same
 * bytes, so only virtual-time measurements belong there.
 *
 * @example
 * ```ts
 * const result = runScenario(loadScenario('quickstart'), { progress: createProgress({ total, label }) })
 * await writeReport('out/quickstart', result.report)
 * console.log(result.report.summary)
 * ```
 */
import type { PolicyName } from '../protocols/routing/index.ts'
import { CHANNELS, percentile, recovery, regretSince, RULES, type Metrics, type TaskRecord } from './metrics.ts'
import type { Plot, SimReport, Table } from './report/index.ts'
import type { Fault, Scenario } from './scenario.ts'
import { SimulationFailure } from './failure.ts'
import { World } from './world.ts'
import type { NatSummary } from './nat.ts'

export interface RunSummary {
  policy: PolicyName
  /** The faulty fraction, in a sweep. */
  faulty?: number
  tasks: number
  done: number
  escalated: number
  unfinished: number
  successRate: number
  accuracy: number
  latencyP50Ms: number
  latencyP99Ms: number
  regret: number
  /** The part of `regret` lost in screening (the best agent never reached the policy). */
  screeningRegret: number
  decisions: number
  rightTypeRate: number
  sybilDispatches: number
  reroutes: number
  messagesPerTask: number
  bytesPerTask: number
  dropped: number
  consensusInstances: number
  consensusCommitted: number
  consensusTimeouts: number
  /** Share of instances whose committee kept Byzantine power below 1/3 that committed (liveness). */
  consensusLiveness: number
  committeeEscalations: number
  /** Two honest members committed different outcomes, in an instance with Byzantine power < 1/3 (must be 0). */
  safetyViolations: number
  /** Instances whose committee gave Byzantine members 1/3 of the power or more, and violations there. */
  instancesOverThreshold: number
  violationsOverThreshold: number
  certificatesAccepted: number
  /** VCVs a requester ignored as issued in the future: their host's clock was ahead by more than the table allows (sim/clock.ts). */
  futureRecords: number
  canaries: number
  /** Accuracy of each aggregation rule over trusted subtasks (correct / all). */
  ruleAccuracy: Record<string, number>
  /** Share of trusted subtasks each rule would have committed wrong (decided, not correct / all). */
  ruleWrong: Record<string, number>
  /** Tasks that finished done but with a wrong result, as a share of all tasks. */
  wrongRate: number
  /** Colluders' and liars' share of the mesh rule's weight over all agents at each trusted tally: largest and mean (NaN without trusted subtasks). */
  liarWeightMax: number
  liarWeightMean: number
  /** Tasks after the first shock until the rolling success (done and correct) is back to 90% of before and stays. */
  recoveryTasks: number | null
  /** Regret of the routing decisions made from the first shock on (null: no shock). */
  shockRegret: number | null
  /** Dispatches to agents a shock hit, after it hit (a router that forgets stops soon). */
  shockedDispatches: number
  recoveryMs: number | null
  /** Every requester held every advertised VCV (virtual ms). */
  convergedMs: number | null
  events: number
  /** Relays, relayed traffic and hole punching, when the scenario has a `nat` block. */
  nat?: NatSummary
}

export interface RunOutput {
  summary: RunSummary
  /** What the report draws (plain data: runs may come back from worker threads). */
  metrics: Pick<Metrics, 'tasks' | 'regret' | 'decisionAt' | 'rules'>
}

export interface ScenarioResult {
  scenario: Scenario
  runs: RunOutput[]
  report: SimReport
}

export interface RunHooks {
  /** Total work units (finished tasks over every run), then progress in them. */
  start?: (total: number) => void
  progress?: (done: number) => void
}

/** Builds and runs the world; whatever goes wrong stops the run as a SimulationFailure with its seed. */
function simulate (scenario: Scenario, policy: PolicyName, onProgress?: (finished: number) => void): World {
  let world: World | undefined
  try {
    world = new World({ scenario, policy, progress: onProgress })
    world.run()
    return world
  } catch (err) {
    const why = err instanceof Error ? `${err.message}${err.name !== 'Error' && !err.message.startsWith(err.name) ? ` (${err.name})` : ''}` : String(err)
    throw new SimulationFailure(why, scenario, policy, world?.engine.now ?? 0)
  }
}

/** One world, one policy. */
export function runOnce (scenario: Scenario, policy: PolicyName, onProgress?: (finished: number) => void, faulty?: number): RunOutput {
  const world = simulate(scenario, policy, onProgress)
  onProgress?.(world.finished)
  const m = world.metrics
  for (const r of world.requesters.values()) {
    for (const t of r.unfinished()) m.tasks.push({ index: t.index, arrivedAt: t.at, finishedAt: world.engine.now, status: 'unfinished', accurate: false, reroutes: 0 })
  }
  m.tasks.sort((a, b) => a.index - b.index)
  const n = m.tasks.length
  const done = m.tasks.filter(t => t.status === 'done')
  const latencies = done.map(t => t.finishedAt - t.arrivedAt).sort((a, b) => a - b)
  const totalMessages = CHANNELS.reduce((s, c) => s + m.messages[c], 0)
  const totalBytes = CHANNELS.reduce((s, c) => s + m.bytes[c], 0)
  const shock = firstShock(scenario)
  const rec = shock === undefined ? undefined : recovery(m.tasks, shock.at * 1000)
  const ruleAccuracy: Record<string, number> = {}
  const ruleWrong: Record<string, number> = {}
  for (const r of RULES) {
    const t = m.rules[r]
    const all = t.decided + t.escalated
    ruleAccuracy[r] = all === 0 ? NaN : t.correct / all
    ruleWrong[r] = all === 0 ? NaN : (t.decided - t.correct) / all
  }
  const summary: RunSummary = {
    policy,
    ...(faulty !== undefined ? { faulty } : {}),
    tasks: n,
    done: done.length,
    escalated: m.tasks.filter(t => t.status === 'escalated').length,
    unfinished: m.tasks.filter(t => t.status === 'unfinished').length,
    successRate: done.length / n,
    accuracy: m.tasks.filter(t => t.accurate).length / n,
    latencyP50Ms: percentile(latencies, 0.5),
    latencyP99Ms: percentile(latencies, 0.99),
    regret: m.regret.at(-1) ?? 0,
    screeningRegret: m.screeningRegret,
    decisions: m.decisions,
    rightTypeRate: m.decisions === 0 ? NaN : m.rightType / m.decisions,
    sybilDispatches: m.sybilDispatches,
    reroutes: m.tasks.reduce((s, t) => s + t.reroutes, 0),
    messagesPerTask: totalMessages / n,
    bytesPerTask: totalBytes / n,
    dropped: m.dropped,
    consensusInstances: m.consensus.instances,
    consensusCommitted: m.consensus.committed,
    consensusTimeouts: m.consensus.timeouts,
    consensusLiveness: m.consensus.instances - m.consensus.overThreshold === 0 ? NaN : m.consensus.committedUnderThreshold / (m.consensus.instances - m.consensus.overThreshold),
    committeeEscalations: m.consensus.escalatedByCommittee,
    safetyViolations: m.consensus.safetyViolations,
    instancesOverThreshold: m.consensus.overThreshold,
    violationsOverThreshold: m.consensus.violationsOverThreshold,
    certificatesAccepted: m.consensus.certificatesAccepted,
    futureRecords: m.futureRecords,
    canaries: m.canaries,
    ruleAccuracy,
    ruleWrong,
    wrongRate: done.filter(t => !t.accurate).length / n,
    liarWeightMax: m.liarWeight.n === 0 ? NaN : m.liarWeight.max,
    liarWeightMean: m.liarWeight.n === 0 ? NaN : m.liarWeight.sum / m.liarWeight.n,
    recoveryTasks: rec?.tasks ?? null,
    shockRegret: shock === undefined ? null : regretSince(m, shock.at * 1000),
    shockedDispatches: m.shockedDispatches,
    recoveryMs: rec?.ms ?? null,
    convergedMs: m.convergedAt >= 0 ? m.convergedAt : null,
    events: world.engine.events,
    ...(world.nat !== undefined ? { nat: world.nat.summary(m.tasks, totalBytes) } : {})
  }
  return { summary, metrics: m }
}

/** The scenario with every wrong-answer and collusion fraction set to `faulty` (a collusion fault is added if none is given). */
export function withFaulty (scenario: Scenario, faulty: number): Scenario {
  const faults: Fault[] = scenario.faults.map(f => f.kind === 'wrong-answers' || f.kind === 'collude' ? { ...f, fraction: faulty } : f)
  if (!faults.some(f => f.kind === 'wrong-answers' || f.kind === 'collude')) faults.push({ kind: 'collude', fraction: faulty })
  return { ...scenario, faults }
}

/** The runs a scenario asks for: one per policy, or one per faulty fraction of a sweep. */
export function planRuns (scenario: Scenario): Array<{ scenario: Scenario, policy: PolicyName, faulty?: number }> {
  return scenario.sweep === undefined
    ? scenario.policies.map(policy => ({ scenario, policy }))
    : scenario.sweep.faulty.map(faulty => ({ scenario: withFaulty(scenario, faulty), policy: scenario.policies[0]!, faulty }))
}

/** Runs every run of the scenario in this thread. */
export function runScenario (scenario: Scenario, hooks: RunHooks = {}): ScenarioResult {
  const plan = planRuns(scenario)
  hooks.start?.(plan.length * scenario.tasks.count)
  const runs = plan.map(({ scenario: s, policy, faulty }, i) => runOnce(s, policy, done => hooks.progress?.(i * scenario.tasks.count + done), faulty))
  return reportRuns(scenario, runs)
}

export function reportRuns (scenario: Scenario, runs: RunOutput[]): ScenarioResult {
  return { scenario, runs, report: buildReport(scenario, runs) }
}

const fix = (x: number, digits = 4): number | null => Number.isFinite(x) ? Number(x.toFixed(digits)) : null

function buildReport (scenario: Scenario, runs: RunOutput[]): SimReport {
  const first = runs[0]!.summary
  const summary: SimReport['summary'] = {
    scenario: scenario.name,
    seed: scenario.seed,
    nodes: scenario.nodes,
    tasks: scenario.tasks.count,
    runs: runs.length
  }
  const flat = (prefix: string, s: RunSummary): void => {
    for (const [k, v] of Object.entries(s)) {
      if (k === 'policy' || k === 'faulty') continue
      if (typeof v === 'object' && v !== null) for (const [r, x] of Object.entries(v)) summary[`${prefix}${k}.${r}`] = fix(x as number)
      else summary[`${prefix}${k}`] = typeof v === 'number' ? fix(v) : v
    }
  }
  if (scenario.sweep === undefined) for (const r of runs) flat(`${r.summary.policy}.`, r.summary)
  else for (const r of runs) flat(`faulty=${r.summary.faulty}.`, r.summary)
  summary.safetyViolations = runs.reduce((s, r) => s + r.summary.safetyViolations, 0)

  const hasShock = scenario.faults.some(f => f.kind === 'shock')
  const tables: Table[] = [{
    id: scenario.sweep === undefined ? 'policies' : 'sweep',
    title: scenario.sweep === undefined ? 'Routing policies side by side (same seed, same task stream)' : `Faulty fraction sweep (${first.policy})`,
    columns: [scenario.sweep === undefined ? 'policy' : 'faulty', 'success', 'accuracy', 'regret', 'of it screening', 'right type', 'p50 ms', 'p99 ms', 'msgs/task', 'bytes/task', 'reroutes', 'sybil dispatches', 'escalated', 'safety violations', ...(hasShock ? ['regret from the shock', 'dispatches to shocked agents', 'recovery (tasks)'] : [])],
    rows: runs.map(({ summary: s }) => [scenario.sweep === undefined ? s.policy : s.faulty ?? 0, fix(s.successRate), fix(s.accuracy), fix(s.regret, 2), fix(s.screeningRegret, 2), fix(s.rightTypeRate), fix(s.latencyP50Ms, 1), fix(s.latencyP99Ms, 1), fix(s.messagesPerTask, 1), fix(s.bytesPerTask, 0), s.reroutes, s.sybilDispatches, s.escalated, s.safetyViolations, ...(hasShock ? [fix(s.shockRegret ?? NaN, 2), s.shockedDispatches, s.recoveryTasks ?? 'never'] : [])])
  }, {
    id: 'aggregation',
    title: 'Aggregation rules on the same signed answers (accuracy against ground truth; escalations count as not correct)',
    columns: [scenario.sweep === undefined ? 'policy' : 'faulty', ...RULES.flatMap(r => [`${r} accuracy`, `${r} wrong`, `${r} escalated`]), 'liars\' weight max', 'liars\' weight mean', 'tasks wrong', 'instances', 'committed', 'timeouts', 'liveness', 'Byzantine ≥ 1/3'],
    rows: runs.map(({ summary: s, metrics: m }) => [scenario.sweep === undefined ? s.policy : s.faulty ?? 0, ...RULES.flatMap(r => [fix(s.ruleAccuracy[r]!), fix(s.ruleWrong[r]!), m.rules[r].escalated]), fix(s.liarWeightMax), fix(s.liarWeightMean), fix(s.wrongRate), s.consensusInstances, s.consensusCommitted, s.consensusTimeouts, fix(s.consensusLiveness), s.instancesOverThreshold])
  }]
  if (scenario.nat !== undefined) {
    tables.push({
      id: 'nat',
      title: `NAT: ${scenario.nat.fraction} of nodes behind NAT, ${scenario.nat.relays} relays, hole punching succeeds with probability ${scenario.nat.holePunch}`,
      columns: [scenario.sweep === undefined ? 'policy' : 'faulty', 'relay bytes mean', 'relay bytes max', 'of it gossip', 'relayed share', 'gossip relayed share', 'pairs relayed', 'pairs upgraded', 'tasks relayed', 'p50 ms relayed', 'p50 ms direct', 'wire bytes/task'],
      rows: runs.map(({ summary: s }) => {
        const n = s.nat!
        return [scenario.sweep === undefined ? s.policy : s.faulty ?? 0, fix(n.relayBytesMean, 0), fix(n.relayBytesMax, 0), fix(n.relayGossipShare), fix(n.relayedShare), fix(n.gossipRelayedShare), n.pairsRelayed, n.pairsUpgraded, n.tasksRelayed, fix(n.latencyP50RelayedMs, 1), fix(n.latencyP50DirectMs, 1), fix(n.wireBytesPerTask, 0)]
      })
    })
  }

  const label = (r: RunOutput): string => scenario.sweep === undefined ? r.summary.policy : `faulty ${r.summary.faulty}`
  const plots: Plot[] = []
  plots.push({
    id: 'regret',
    title: 'Cumulative regret against an oracle router',
    kind: 'line',
    xLabel: 'routing decision',
    yLabel: 'cumulative regret (expected reward)',
    series: runs.map(r => ({ name: label(r), points: thin(r.metrics.regret.map((y, i) => [i + 1, y] as [number, number]), 400) }))
  })
  plots.push({
    id: 'latency-cdf',
    title: 'Task latency (completed tasks)',
    kind: 'step',
    logX: true,
    xLabel: 'latency (ms, virtual)',
    yLabel: 'share of tasks',
    yRange: [0, 1],
    series: runs.map(r => {
      const xs = r.metrics.tasks.filter(t => t.status === 'done').map(t => t.finishedAt - t.arrivedAt).sort((a, b) => a - b)
      return { name: label(r), points: thin(xs.map((x, i) => [x, (i + 1) / xs.length] as [number, number]), 400) }
    })
  })
  const shock = firstShock(scenario)
  plots.push({
    id: 'recovery',
    title: 'Rolling task success: done and correct (window of 50 tasks, by arrival)',
    kind: 'line',
    xLabel: 'arrival time (s, virtual)',
    yLabel: 'success rate',
    yRange: [0, 1],
    series: runs.map(r => ({ name: label(r), points: thin(rolling(r.metrics.tasks, 50), 400) })),
    ...(shock !== undefined ? { markers: [{ x: shock.at, label: `${shock.kind} at ${shock.at} s` }] } : {})
  })
  if (scenario.sweep !== undefined) {
    plots.push({
      id: 'accuracy-vs-faulty',
      title: 'Trusted-subtask accuracy against the faulty fraction',
      kind: 'scatter-line',
      xLabel: 'faulty fraction of agents',
      yLabel: 'accuracy',
      yRange: [0, 1],
      series: RULES.map(rule => ({ name: rule, points: runs.map(r => [r.summary.faulty ?? 0, r.summary.ruleAccuracy[rule]!] as [number, number]) }))
    })
  }
  return {
    title: `${scenario.name} — ${scenario.nodes} nodes, seed ${scenario.seed}`,
    summary,
    tables,
    plots,
    notes: notes(scenario)
  }
}

/** The earliest shock, crash or partition: recovery is measured from it. */
function firstShock (scenario: Scenario): { at: number, kind: string } | undefined {
  return scenario.faults
    .flatMap(f => f.kind === 'shock' || f.kind === 'crash' || f.kind === 'partition' ? [{ at: f.at, kind: f.kind }] : [])
    .sort((a, b) => a.at - b.at)[0]
}

function rolling (tasks: readonly TaskRecord[], w: number): Array<[number, number]> {
  const out: Array<[number, number]> = []
  let s = 0
  for (let i = 0; i < tasks.length; i++) {
    s += tasks[i]!.accurate ? 1 : 0
    if (i >= w) s -= tasks[i - w]!.accurate ? 1 : 0
    if (i >= w - 1) out.push([tasks[i]!.arrivedAt / 1000, s / w])
  }
  return out
}

/** At most `n` points, evenly by index, always keeping the last. */
function thin (points: Array<[number, number]>, n: number): Array<[number, number]> {
  if (points.length <= n) return points
  const out: Array<[number, number]> = []
  for (let i = 0; i < n - 1; i++) out.push(points[Math.floor(i * points.length / (n - 1))]!)
  out.push(points[points.length - 1]!)
  return out
}

function notes (scenario: Scenario): string[] {
  const nat = scenario.nat === undefined
    ? []
    : [`NAT: ${scenario.nat.fraction} of the nodes cannot be dialled; each holds a reservation on one of ${scenario.nat.relays} public relays (re-reserving on another when its relay goes down). A dial to a NAT'd node goes through its relay (two links plus ${scenario.nat.relayExtraMs[0]}–${scenario.nat.relayExtraMs[1]} ms forwarding, bytes counted at the relay) and is upgraded to direct by hole punching with probability ${scenario.nat.holePunch} after one relayed round trip; a NAT'd node dials public nodes directly. Gossip hops into NAT'd nodes are relayed unless their mesh link was hole-punched (same probability); as everywhere in the gossip model, only the paths to requesters are counted, so relays' gossip bytes are a lower bound. Tasks count as relayed when their first execute call went through a relay. Not modelled: relay slots and bandwidth limits, the time to notice a lost relay, hole-punch retries.`]
  return [
    `Scenario ${scenario.name}: ${scenario.description}`.trim(),
    'Computed by the protocols/ state machines a real peer runs: capability tables verify every signed VCV, the routing core and selection policies choose, beacon rounds screen, the task machine reroutes and escalates, and consensus peers run weighted Tendermint with signed certificates. Only I/O is simulated: virtual time, modelled links and modelled agents.',
    'Network: per-link base latency from the topology with lognormal jitter, serialisation by size and bandwidth, independent loss, down nodes and partitions. Not modelled: congestion, connection set-up, TCP retransmission (a lost direct message is lost; the protocols time out).',
    'Gossip: VCVs and certificates reach every requester along a path of ~log(N)/log(D−1) relay hops with per-hop link delay; a hop lost to link loss is repaired at the next heartbeat. Duplicate copies and peer scoring are not modelled.',
    `Signatures: ${scenario.crypto === 'fast' ? 'a keyed-SHA-256 stand-in with a per-host secret (same sizes, nobody signs as another host)' : 'real Ed25519'}.`,
    'Regret: per routing decision, the highest expected reward among live agents minus the chosen agent\'s, where expected reward is the router\'s own reward (success, latency and cost penalties, default weights) under the agents\' true probability of a correct answer for the subtask\'s type and difficulty. The router itself learns from whether a call answered (and, for trusted subtasks, agreed): an agent that answers wrongly but promptly looks good to it until consensus or canaries say otherwise, so wrong-answer faults add regret it cannot learn away on untrusted subtasks. A decision with no candidate at all adds none.',
    'Aggregation rules are compared on the same signed answers at the moment the requester sends them to the committee: the mesh rule (reputation × calibrated, capped confidence, ahead by a margin), plain majority, and CP-WBFT\'s rule as its code runs it (one exchange over a complete topology adopting the highest mean confidence, then the highest mean confidence among answers held at ≥ 0.5; it never escalates). That moment is chosen by the mesh\'s own stopping rule (more executions while the mesh rule finds the tally too close), so the other two rules see the answers the mesh chose to collect.',
    'Requesters do not crash or churn: they are the clients being measured. Committee members, hosts and relays do. A crash closes the node\'s connections (requesters with a call there hear it one link delay later); a recovered node comes back as a restarted peer does: with its reputation book, its certificates and the ids of the instances it joined (it never votes in them again), without the unfinished instances it held in memory.',
    'Safety violations count member commits that differ from the first commit of their instance, in instances where Byzantine members held less than 1/3 of the power (those at or over it are counted apart: no protocol promises safety there).',
    ...nat
  ]
}
