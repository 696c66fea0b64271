/**
 * The cross-check: the same scenario, at a size one machine can run for real, on real agentmesh
 * peers — libp2p over TCP on 127.0.0.1, real Ed25519, the real router, task runner, consensus
 * service and canaries — with the same population (agents, their models and misbehaviour) and
 * the same task stream as the simulation. Both runs are then compared metric by metric.
 *
 * Time is compressed in the real run (`timeScale`: agent service times, task and attempt
 * deadlines and arrival times scaled down; the node's own timers — beacon deadlines, consensus
 * timeouts and resends, canary deadlines — are not, so they are relatively slower there; beacon
 * replies report latencies divided by the scale, in simulated milliseconds as simulated hosts
 * report them, since latency is part of what the bandit weighs), and links are loopback (the
 * simulated side runs lossless links to match), so latencies are not compared. Rates are: for
 * each, the tolerance is three standard errors of the difference of two proportions over the
 * task count, the spread two honest runs of the same scenario would show.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AgentInputError, type Agent, type AgentDescription, type AgentResult } from '../node/agents/agent.ts'
import { startPeer, type Peer } from '../node/peer.ts'
import type { TaskReport } from '../node/services/task-runner.ts'
import { cachePerArray } from '../protocols/cbor.ts'
import { decodeCertificate } from '../protocols/consensus/index.ts'
import type { LocalAgent } from '../protocols/capability/index.ts'
import type { PolicyName } from '../protocols/routing/index.ts'
import { callResult, liveState, serviceTime, type AgentModel, type Difficulty } from './agents.ts'
import { CATALOGUE } from './catalogue.ts'
import { percentile } from './metrics.ts'
import { makePopulation } from './population.ts'
import type { Table } from './report/index.ts'
import { stream, type Rng } from './rng.ts'
import { runOnce, type RunSummary } from './run.ts'
import type { Scenario } from './scenario.ts'
import { correctValue, inputValue, type SimTask } from './tasks.ts'

/** Faults the real run can reproduce: the agents' own behaviour. Network faults are simulation-only. */
const REAL_FAULTS = new Set(['wrong-answers', 'confident-liar', 'collude', 'sybil'])
export const CROSS_CHECK_MAX_NODES = 50

export class CrossCheckError extends Error {
  override name = 'CrossCheckError'
}

/** A simulated agent behind the real Agent interface: same model, real (scaled) time. */
class ModelAgent implements Agent {
  readonly #model: AgentModel
  readonly #advert: LocalAgent
  readonly #rng: Rng
  readonly #timeScale: number

  constructor (model: AgentModel, advert: LocalAgent, rng: Rng, timeScale: number) {
    this.#model = model
    this.#advert = advert
    this.#rng = rng
    this.#timeScale = timeScale
  }

  describe (): AgentDescription {
    const a = this.#advert
    return { name: a.name, description: a.description, skills: a.skills, inputSchema: a.inputSchema, outputSchema: a.outputSchema, costPerCall: a.costPerCall, latencyMs: a.latencyMs, capacity: a.capacity, policy: a.policy }
  }

  async handle (input: unknown, signal?: AbortSignal): Promise<AgentResult> {
    const m = this.#model
    const o = (input ?? {}) as { k?: unknown, d?: unknown }
    const type = typeof o.k === 'string' ? o.k : m.type
    const difficulty: Difficulty = o.d === 'medium' || o.d === 'hard' ? o.d : 'easy'
    const x = inputValue(input)
    if (x === undefined) throw new AgentInputError('expected { x } or { a, b } with k (kind) and d (difficulty)')
    m.running++
    try {
      await sleep(serviceTime(m, difficulty, this.#rng) * this.#timeScale, signal)
      const truth = correctValue(type, x)
      const r = callResult(m, type, difficulty, truth, truth + 7, this.#rng)
      if (r.kind === 'silent') {
        await sleep(Infinity, signal) // never answers: the requester's deadline ends it
        throw new Error('unreachable')
      }
      // A plain failure, as the simulated host replies (sim/world.ts: kind 'failed'), also for
      // "cannot handle": an input refusal would start the task machine's input-claim rule (two
      // hosts refusing escalate the subtask), which the simulated agents never invoke.
      if (r.kind === 'error') throw new Error(r.error)
      return { output: { value: r.value }, confidence: r.confidence }
    } finally {
      m.running--
    }
  }
}

async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) return reject(signal.reason)
    const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined
    function done (): void { signal?.removeEventListener('abort', abort); resolve() }
    function abort (): void { clearTimeout(timer); reject(signal!.reason) }
    signal?.addEventListener('abort', abort, { once: true })
  })
}

export interface RealRun {
  summary: Pick<RunSummary, 'tasks' | 'done' | 'escalated' | 'successRate' | 'accuracy' | 'rightTypeRate' | 'reroutes' | 'consensusInstances' | 'consensusCommitted' | 'safetyViolations' | 'latencyP50Ms'>
  wallMs: number
  /** How late this process's timers fired while the tasks ran (p99): high when the CPU was not ours. */
  loopDelayP99Ms: number
  timeScale: number
}

/**
 * Event-loop delay (p99) above which the real run counts as starved: its deadlines, scaled down
 * with time, then mean less than the simulation's, and a disagreement says more about the
 * machine's load than about the protocol.
 */
const STARVED_LOOP_DELAY_MS = 100
/** How much slower a starved run is repeated (once), so that the same delays weigh less. */
const STARVED_SLOWDOWN = 5

export interface CrossCheck {
  simulated: RunSummary
  real: RealRun
  table: Table
  /** Every compared metric within its tolerance. */
  agrees: boolean
}

/** Checks a scenario can run for real, saying what to change if not. */
export function crossCheckProblem (s: Scenario): string | undefined {
  if (s.nodes > CROSS_CHECK_MAX_NODES) return `the cross-check runs every node as a real peer in this process: at most ${CROSS_CHECK_MAX_NODES} nodes (try --nodes ${Math.min(s.nodes, 20)})`
  const unsupported = s.faults.filter(f => !REAL_FAULTS.has(f.kind)).map(f => f.kind)
  if (unsupported.length > 0) return `the cross-check reproduces agent faults only (${[...REAL_FAULTS].join(', ')}); this scenario also has ${[...new Set(unsupported)].join(', ')}`
  if (s.sweep !== undefined) return 'the cross-check runs one configuration: a sweep scenario has several'
  if (s.nat !== undefined && s.nat.fraction > 0) return 'the cross-check\'s real peers all listen on 127.0.0.1, every one dialable: NAT is simulated only'
  return undefined
}

/** Runs the scenario on real peers with `policy`, the same population and task stream as the simulation. */
export async function runReal (s: Scenario, policy: PolicyName, timeScale = 0.05): Promise<RealRun> {
  const problem = crossCheckProblem(s)
  if (problem !== undefined) throw new CrossCheckError(problem)
  cachePerArray(false) // real peers, as a node runs them (the simulated run turned the caches on)
  const population = makePopulation(s)
  const agentRng = stream(s.seed, 'real-agents')
  const types = CATALOGUE.filter(t => s.agents.types.includes(t.name))
  // Canaries as the simulated requesters run them: 5%, every newcomer twice, known answers per kind.
  const cases = types.flatMap(t => [11, 22, 33].map(x => ({ skills: [t.skill], input: { x: 2_000_000 + x, k: t.name, d: 'easy' }, answer: { value: correctValue(t.name, 2_000_000 + x) } })))
  const requesters = new Set(population.requesters)
  const dirs: string[] = []
  const peers: Peer[] = []
  const started = performance.now()
  try {
    for (let node = 0; node < s.nodes; node++) {
      const dir = await mkdtemp(join(tmpdir(), 'agentmesh-crosscheck-'))
      dirs.push(dir)
      const models = population.agents.filter(a => a.host === node)
      const hosted = models.map(a => new ModelAgent(a, population.adverts[a.index]!, agentRng, timeScale))
      // A sybil's host lies in beacon replies as the simulated one does (sim/agents.ts liveState):
      // measured honestly, its hung calls would show it busy and the router would skip it.
      const sybils = new Map(models.filter(a => a.behaviour === 'sybil').map(a => [population.adverts[a.index]!.name, a]))
      peers.push(await startPeer({
        dataDir: dir,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        agents: [],
        customAgents: hosted,
        beaconState: state => { const m = sybils.get(state.agent); return m === undefined ? { ...state, latencyMs: state.latencyMs / timeScale } : { ...liveState(m), agent: state.agent } },
        routingPolicy: policy,
        ttlMs: 3_600_000,
        ...(requesters.has(node) ? { canaries: { rate: 0.05, newcomerChecks: 2, cases } } : {})
      }))
    }
    // A full mesh: committees message their members directly.
    for (let i = 1; i < peers.length; i++) {
      const failed = await peers[i]!.dial(peers.slice(0, i).flatMap(p => p.multiaddrs().slice(0, 1)))
      if (failed.length > 0) throw new CrossCheckError(`peers could not connect on 127.0.0.1: ${failed[0]!.error}`)
    }
    await converge(peers, population.requesters, population.agents.length)
    const delay = monitorEventLoopDelay({ resolution: 10 })
    delay.enable()
    const t0 = performance.now()
    let reports
    try {
      reports = await Promise.all(population.tasks.map(async task => {
        await sleep(Math.max(0, task.at * timeScale - (performance.now() - t0)))
        const run = peers[task.requester]!.tasks.submit(scaled(task, timeScale))
        return { task, report: await run.finished }
      }))
    } finally {
      delay.disable()
    }
    return { summary: summarise(reports, peers), wallMs: performance.now() - started, loopDelayP99Ms: delay.percentile(99) / 1e6, timeScale }
  } finally {
    await Promise.allSettled(peers.map(async p => { await p.stop() }))
    await Promise.allSettled(dirs.map(async d => { await rm(d, { recursive: true, force: true }) }))
  }
}

/** Waits until every requester has every VCV verified and indexed. */
async function converge (peers: Peer[], requesters: readonly number[], agents: number): Promise<void> {
  const deadline = performance.now() + 60_000
  for (;;) {
    if (requesters.every(r => peers[r]!.capability.agents().length >= agents)) break
    if (performance.now() > deadline) throw new CrossCheckError(`the real peers did not converge in 60 s (${requesters.map(r => peers[r]!.capability.agents().length).join(', ')} of ${agents} agents)`)
    await sleep(50)
  }
  await Promise.all(requesters.map(async r => { await peers[r]!.whenIndexed() }))
}

/** The task with its deadlines scaled to real time. */
function scaled (task: SimTask, timeScale: number): unknown {
  const spec = task.spec
  return {
    ...spec,
    ...(spec.deadlineMs !== undefined ? { deadlineMs: Math.max(1000, spec.deadlineMs * timeScale) } : {}),
    subtasks: spec.subtasks.map(st => ({ ...st, ...(st.deadlineMs !== undefined ? { deadlineMs: Math.max(250, st.deadlineMs * timeScale) } : {}) }))
  }
}

function summarise (reports: Array<{ task: SimTask, report: TaskReport }>, peers: Peer[]): RealRun['summary'] {
  const n = reports.length
  let done = 0
  let accurate = 0
  let reroutes = 0
  let decisions = 0
  let rightType = 0
  let instances = 0
  const latencies: number[] = []
  for (const { task, report } of reports) {
    if (report.status === 'done') {
      done++
      const start = report.trace[0]?.at ?? 0
      latencies.push((report.trace.at(-1)?.at ?? start) - start)
    }
    if (report.status === 'done' && [...task.truth].every(([id, t]) => (report.outputs[id] as { value?: unknown } | undefined)?.value === t.value)) accurate++
    for (const e of report.trace) {
      if (e.kind === 'reroute') reroutes++
      if (e.kind === 'agree' && e.reason === undefined) instances++
      const chosen = (e.detail as { chosen?: unknown } | undefined)?.chosen
      if (e.kind === 'route' && typeof chosen === 'string' && e.subtask !== undefined) {
        decisions++
        const type = task.truth.get(e.subtask)?.type
        if (type !== undefined && chosen.slice(chosen.indexOf('/') + 1).startsWith(`${type}-`)) rightType++
      }
    }
  }
  // Safety: every certificate any peer holds for an instance commits the same outcome.
  const outcomes = new Map<string, string>()
  let violations = 0
  for (const p of peers) {
    for (const id of p.consensus.certificateIds()) {
      const outcome = JSON.stringify(decodeCertificate(p.consensus.certificate(id)!).outcome)
      const seen = outcomes.get(id)
      if (seen === undefined) outcomes.set(id, outcome)
      else if (seen !== outcome) violations++
    }
  }
  latencies.sort((a, b) => a - b)
  return {
    tasks: n,
    done,
    escalated: reports.filter(r => r.report.status === 'escalated').length,
    successRate: done / n,
    accuracy: accurate / n,
    rightTypeRate: decisions === 0 ? NaN : rightType / decisions,
    reroutes,
    consensusInstances: instances,
    consensusCommitted: outcomes.size,
    safetyViolations: violations,
    latencyP50Ms: percentile(latencies, 0.5)
  }
}

/** The simulated and the real run of one scenario, side by side, with tolerances. */
export async function crossCheck (s: Scenario, policy: PolicyName = s.policies[0]!, timeScale = 0.05): Promise<CrossCheck> {
  // Loopback loses nothing: the simulated side runs lossless links too.
  const simulated = runOnce({ ...s, network: { ...s.network, loss: 0 } }, policy).summary
  let check = compare(s, policy, simulated, await runReal(s, policy, timeScale))
  if (!check.agrees && check.real.loopDelayP99Ms > STARVED_LOOP_DELAY_MS && timeScale < 1) {
    // Starved (another process held the cores): once more, slower, and that run is the verdict.
    check = compare(s, policy, simulated, await runReal(s, policy, Math.min(1, timeScale * STARVED_SLOWDOWN)), check.real)
  }
  return check
}

function compare (s: Scenario, policy: PolicyName, simulated: RunSummary, real: RealRun, starved?: RealRun): CrossCheck {
  const timeScale = real.timeScale
  const n = s.tasks.count
  const rows: Table['rows'] = []
  let agrees = true
  const rate = (name: string, a: number, b: number, count: number): void => {
    const tolerance = 3 * Math.sqrt((a * (1 - a) + b * (1 - b)) / Math.max(1, count)) + 0.02
    const ok = Math.abs(a - b) <= tolerance
    agrees &&= ok
    rows.push([name, round(a), round(b), round(b - a), round(tolerance), ok ? 'yes' : 'NO'])
  }
  rate('task success (done)', simulated.successRate, real.summary.successRate, n)
  rate('accuracy (done and correct)', simulated.accuracy, real.summary.accuracy, n)
  rate('routed to the right kind of agent', simulated.rightTypeRate, real.summary.rightTypeRate, Math.min(simulated.decisions, 4 * n))
  const safe = simulated.safetyViolations === 0 && real.summary.safetyViolations === 0
  agrees &&= safe
  rows.push(['safety violations', simulated.safetyViolations, real.summary.safetyViolations, null, 0, safe ? 'yes' : 'NO'])
  rows.push(['reroutes per task (not compared)', round(simulated.reroutes / n), round(real.summary.reroutes / n), null, null, '-'])
  rows.push(['committed certificates (not compared)', simulated.consensusCommitted, real.summary.consensusCommitted, null, null, '-'])
  rows.push(['latency p50 ms (not compared: loopback, scaled time)', round(simulated.latencyP50Ms), round(real.summary.latencyP50Ms), null, null, '-'])
  rows.push(['event-loop delay p99 ms of the real run (not compared)', null, round(real.loopDelayP99Ms), null, null, '-'])
  if (starved !== undefined) {
    rows.push([`a first real run at time × ${starved.timeScale} was starved (event-loop delay p99 ${Math.round(starved.loopDelayP99Ms)} ms): its success (not compared)`, null, round(starved.summary.successRate), null, null, '-'])
  }
  return {
    simulated,
    real,
    agrees,
    table: { id: 'cross-check', title: `Simulated against real libp2p peers (${s.nodes} nodes on 127.0.0.1, ${policy}, time × ${timeScale})`, columns: ['metric', 'simulated', 'real', 'difference', 'tolerance', 'agrees'], rows }
  }
}

function round (x: number): number | null {
  return Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null
}
