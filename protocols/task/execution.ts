/**
 * Runs one task DAG as a pure state machine: release ready subtasks, ask the driver to route them,
 * dispatch to the chosen agents, collect results, release dependents.
 *
 * Self-healing: a failed or timed-out attempt excludes its agent for that subtask and the next
 * candidate takes the slot (a `reroute` in the trace). When no candidate is left the task ends in
 * an explicit `escalate` with the reason. No failure is silent: the trace shows each one.
 */
import { invariant } from '../assert.ts'
import { splitAgentId } from '../capability/schema.ts'
import { canonicalJson } from '../hash.ts'
import { PointerError, resolvePointer } from '../json.ts'
import type { CapabilityRequest, SubtaskSpec, TaskSpec } from './schema.ts'

/** A routable agent for one subtask, best first; `cost` is what one call spends. */
export interface Candidate {
  agent: string
  cost: number
}

export type TaskStatus = 'running' | 'done' | 'escalated' | 'cancelled'
export type SubtaskStatus = 'waiting' | 'routing' | 'running' | 'agreeing' | 'done' | 'escalated' | 'cancelled'

export type TaskEffect =
  /** Find candidates for a subtask (index screening, beacon, bandit), then call `routed`. */
  | { type: 'route', subtask: string, request: CapabilityRequest, exclude: string[] }
  /** Run one attempt; answer with `succeeded` or `failure` for this attempt id. */
  | { type: 'dispatch', subtask: string, attempt: number, agent: string, input: unknown, deadline: number }
  /** Abandon an attempt: it timed out (the agent's fault) or the task ended (nobody's). */
  | { type: 'cancel', subtask: string, attempt: number, agent: string, why: 'timeout' | 'task-ended' }
  | { type: 'timer', at: number }
  | { type: 'finished', status: Exclude<TaskStatus, 'running'>, reason?: string }
  /**
   * A trusted subtask has all its answers: agree on one (consensus), then call `agreed`,
   * `disagreed`, or, while the tally is too close and `final` is false, `more`.
   */
  | { type: 'agree', subtask: string, attempts: Array<{ attempt: number, agent: string }>, final: boolean }
  /**
   * What a routing decision that chose `agent` teaches the router, once the requester knows:
   * `nothing` (the input did not fit its schema, or its input-error report was upheld: the
   * requester's mistake, not the agent's), or `failure` (it reported an input error that another
   * agent did not have).
   */
  | { type: 'settle', subtask: string, agent: string, teach: 'nothing' | 'failure' }

export type TraceKind = 'start' | 'route' | 'dispatch' | 'result' | 'reroute' | 'escalate' | 'cancel' | 'done' | 'agree' | 'more'

export interface TraceEntry {
  at: number
  kind: TraceKind
  subtask?: string
  agent?: string
  attempt?: number
  reason?: string
  /** The router's explanation of a decision (candidates, scores), recorded as given. */
  detail?: unknown
}

/** Turns the outputs of a subtask's redundant runs into one value, or a reason to escalate. */
export type Aggregate = (outputs: unknown[]) => { value: unknown } | { escalate: string }

export interface TaskExecutionOptions {
  /** Per-attempt deadline when a subtask sets none (default 30 s). */
  attemptDeadlineMs?: number
  /** Routing rounds a subtask may use before it escalates (default 4). */
  maxRoutes?: number
  aggregate?: Aggregate
  /**
   * Before each dispatch: the input for this candidate, or why it does not fit the candidate's
   * declared input schema (the candidate is then skipped, and teaches nothing). The default sends
   * the input as it is. Node and simulator pass a check against the agent's VCV (input-check.ts).
   */
  prepareInput?: (agent: string, input: unknown, request: CapabilityRequest) => { input: unknown } | { problem: string }
}

interface Slot {
  attempt?: number
  agent?: string
  deadline?: number
  output?: { value: unknown }
  /** The attempt that produced the output (its signed answer, for consensus). */
  answered?: number
}

interface SubtaskRun {
  spec: SubtaskSpec
  status: SubtaskStatus
  candidates: Candidate[]
  /** Agents excluded for this subtask: each failed once here. */
  failed: Set<string>
  slots: Slot[]
  spent: number
  routes: number
  /** Executions added because the tally was too close (trusted subtasks). */
  extra: number
  /** Candidates skipped because the input does not fit their schema: agent → why. */
  unfit: Map<string, string>
  /** Agents that answered "your input is wrong" (failure kind `input`), not yet settled, and the last thing one said. */
  inputClaims: string[]
  inputReason?: string
  output?: unknown
}

/** Default aggregation: the value a strict majority of runs returned (canonical JSON equality). */
export const majority: Aggregate = (outputs) => {
  const counts = new Map<string, { value: unknown, n: number }>()
  for (const value of outputs) {
    const key = canonicalJson(value) ?? 'undefined'
    const entry = counts.get(key) ?? { value, n: 0 }
    entry.n++
    counts.set(key, entry)
  }
  const best = [...counts.values()].sort((a, b) => b.n - a.n)[0]
  if (best !== undefined && best.n * 2 > outputs.length) return { value: best.value }
  return { escalate: `no majority among ${outputs.length} results (${[...counts.values()].map(c => c.n).join('/')})` }
}

export class TaskExecution {
  readonly spec: TaskSpec
  readonly trace: TraceEntry[] = []
  #status: TaskStatus = 'running'
  #reason: string | undefined
  readonly #runs = new Map<string, SubtaskRun>()
  readonly #attempts = new Map<number, string>() // attempt id -> subtask id
  readonly #options: Required<TaskExecutionOptions>
  #nextAttempt = 1
  #spent = 0
  #deadline = Infinity
  #wakeAt = Infinity
  #started = false

  constructor (spec: TaskSpec, options: TaskExecutionOptions = {}) {
    this.spec = spec
    this.#options = { attemptDeadlineMs: 30_000, maxRoutes: 4, aggregate: majority, prepareInput: (_agent, input) => ({ input }), ...options }
    for (const s of spec.subtasks) {
      this.#runs.set(s.id, { spec: s, status: 'waiting', candidates: [], failed: new Set(), slots: Array.from({ length: s.redundancy }, () => ({})), spent: 0, routes: 0, extra: 0, unfit: new Map(), inputClaims: [] })
    }
  }

  get status (): TaskStatus { return this.#status }
  get reason (): string | undefined { return this.#reason }
  get spent (): number { return this.#spent }
  subtaskStatus (id: string): SubtaskStatus | undefined { return this.#runs.get(id)?.status }
  /** Outputs of finished subtasks. */
  outputs (): Record<string, unknown> {
    return Object.fromEntries([...this.#runs].filter(([, r]) => r.status === 'done').map(([id, r]) => [id, r.output]))
  }

  /** The outputs of the subtasks nothing depends on: the task's result. */
  result (): Record<string, unknown> {
    const needed = new Set(this.spec.subtasks.flatMap(s => s.dependsOn))
    const outputs = this.outputs()
    return Object.fromEntries(Object.entries(outputs).filter(([id]) => !needed.has(id)))
  }

  start (now: number): TaskEffect[] {
    if (this.#started) return []
    this.#started = true
    if (this.spec.deadlineMs !== undefined) this.#deadline = now + this.spec.deadlineMs
    this.#log(now, { kind: 'start' })
    const effects: TaskEffect[] = []
    for (const run of this.#runs.values()) if (run.spec.dependsOn.length === 0) effects.push(...this.#route(run, now))
    return [...effects, ...this.#timer()]
  }

  /** The driver's answer to a `route` effect: candidates best first, and why (for the trace). */
  routed (subtask: string, candidates: Candidate[], now: number, explanation?: unknown): TaskEffect[] {
    const run = this.#runs.get(subtask)
    if (this.#status !== 'running' || run === undefined || run.status !== 'routing') return []
    const busy = new Set(run.slots.map(s => s.agent).filter(a => a !== undefined))
    run.candidates = candidates.filter(c => !run.failed.has(c.agent) && !busy.has(c.agent))
    this.#log(now, { kind: 'route', subtask, detail: explanation ?? { candidates: run.candidates.map(c => c.agent) } })
    run.status = 'running'
    return [...this.#fill(run, now, true), ...this.#timer()]
  }

  /** An attempt returned its output. */
  succeeded (attempt: number, output: unknown, now: number): TaskEffect[] {
    const found = this.#slotOf(attempt)
    if (found === undefined) return [] // late answer to an abandoned attempt: already a reroute in the trace
    const { run, slot } = found
    this.#attempts.delete(attempt)
    this.#log(now, { kind: 'result', subtask: run.spec.id, agent: slot.agent, attempt })
    slot.output = { value: output }
    slot.answered = attempt
    delete slot.attempt
    delete slot.deadline
    // Another agent took this input: earlier "your input is wrong" answers were the agents' failures.
    const settled: TaskEffect[] = run.inputClaims.map(agent => ({ type: 'settle', subtask: run.spec.id, agent, teach: 'failure' }))
    run.inputClaims = []
    // Redundant copies still missing an agent get one now (or a new routing round).
    const effects = run.slots.every(s => s.output !== undefined) ? this.#complete(run, now) : this.#fill(run, now, false)
    return [...settled, ...effects, ...this.#timer()]
  }

  /**
   * An attempt failed (agent error, refused input, lost connection): reroute around that agent.
   * `kind: 'input'` (the agent says the input is wrong) is the requester's mistake once a second
   * agent of another host says so too: the subtask escalates with what to fix and neither agent is
   * blamed. Until then it is a claim: if another agent then succeeds, the claim was false and
   * counts as that agent's failure.
   */
  failure (attempt: number, reason: string, now: number, kind?: string): TaskEffect[] {
    const found = this.#slotOf(attempt)
    if (found === undefined) return []
    const { run, slot } = found
    if (kind === 'input') {
      const agent = slot.agent!
      const hostOf = (a: string): string => splitAgentId(a)?.host ?? a
      const hosts = new Set(run.inputClaims.map(hostOf))
      run.inputClaims.push(agent)
      run.inputReason = reason
      if (hosts.size > 0 && !hosts.has(hostOf(agent))) {
        this.#attempts.delete(attempt)
        this.#log(now, { kind: 'reroute', subtask: run.spec.id, agent, attempt, reason })
        return [...this.#escalate(run, `the input was refused by ${run.inputClaims.length} agents (${run.inputClaims.join(', ')}): ${reason}; fix the input`, now, true), ...this.#timer()]
      }
    }
    return [...this.#reroute(run, slot, attempt, reason, now), ...this.#timer()]
  }

  /** Consensus committed `value` for a trusted subtask; `detail` (certificate, tally) goes in the trace. */
  agreed (subtask: string, value: unknown, now: number, detail?: unknown): TaskEffect[] {
    const run = this.#runs.get(subtask)
    if (this.#status !== 'running' || run?.status !== 'agreeing') return []
    this.#log(now, { kind: 'agree', subtask, detail })
    return [...this.#finish(run, value, now), ...this.#timer()]
  }

  /** The tally is too close to call: run one more agent (ahead-by-k), or escalate if none may be added. */
  more (subtask: string, reason: string, now: number): TaskEffect[] {
    const run = this.#runs.get(subtask)
    if (this.#status !== 'running' || run?.status !== 'agreeing') return []
    if (run.extra >= (run.spec.trust?.extra ?? 0)) return this.#escalate(run, `${reason}, and no more executions are allowed`, now)
    run.extra++
    run.slots.push({})
    run.status = 'running'
    this.#log(now, { kind: 'more', subtask, reason })
    return [...this.#fill(run, now, false), ...this.#timer()]
  }

  /** Consensus could not commit an answer (a split tally, or no committee): escalate with why. */
  disagreed (subtask: string, reason: string, now: number, detail?: unknown): TaskEffect[] {
    const run = this.#runs.get(subtask)
    if (this.#status !== 'running' || run?.status !== 'agreeing') return []
    this.#log(now, { kind: 'agree', subtask, reason, detail })
    return this.#escalate(run, reason, now)
  }

  /** Cancels the whole task. */
  cancel (reason: string, now: number): TaskEffect[] {
    if (this.#status !== 'running') return []
    return this.#end('cancelled', reason, now)
  }

  /** Timer: attempts past their deadline fail as timeouts; past the task deadline everything stops. */
  tick (now: number): TaskEffect[] {
    this.#wakeAt = Infinity
    if (this.#status !== 'running') return []
    if (now >= this.#deadline) return this.#end('escalated', `task deadline of ${this.spec.deadlineMs} ms passed`, now)
    const effects: TaskEffect[] = []
    for (const [attempt, subtask] of [...this.#attempts]) {
      const run = this.#runs.get(subtask)!
      const slot = run.slots.find(s => s.attempt === attempt)!
      if (slot.deadline !== undefined && now >= slot.deadline) {
        effects.push({ type: 'cancel', subtask, attempt, agent: slot.agent!, why: 'timeout' })
        effects.push(...this.#reroute(run, slot, attempt, 'timed out', now))
      }
    }
    return [...effects, ...this.#timer()]
  }

  // ---- internals -----------------------------------------------------------------------------

  #slotOf (attempt: number): { run: SubtaskRun, slot: Slot } | undefined {
    const subtask = this.#attempts.get(attempt)
    if (subtask === undefined || this.#status !== 'running') return undefined
    const run = this.#runs.get(subtask)!
    const slot = run.slots.find(s => s.attempt === attempt)
    return slot === undefined ? undefined : { run, slot }
  }

  #route (run: SubtaskRun, now: number): TaskEffect[] {
    if (run.routes >= this.#options.maxRoutes) {
      return this.#nobodyLeft(run, `no agent left after ${run.routes} routing rounds${this.#failedList(run)}`, now)
    }
    run.routes++
    run.status = 'routing'
    // Redundant copies need distinct agents: those already holding a slot are excluded too.
    const holding = run.slots.flatMap(s => s.agent === undefined ? [] : [s.agent])
    return [{ type: 'route', subtask: run.spec.id, request: run.spec.capability, exclude: [...new Set([...run.failed, ...holding, ...run.unfit.keys()])] }]
  }

  /** Puts candidates into empty slots; asks for more candidates, or escalates, when there are none. */
  #fill (run: SubtaskRun, now: number, freshRoute: boolean): TaskEffect[] {
    const effects: TaskEffect[] = []
    for (const slot of run.slots) {
      if (slot.attempt !== undefined || slot.output !== undefined) continue
      const input = this.#input(run)
      if ('error' in input) return this.#escalate(run, input.error, now)
      let candidate: Candidate | undefined
      let value: unknown
      while ((candidate = run.candidates.shift()) !== undefined) {
        if (!this.#affordable(run, candidate)) {
          this.#log(now, { kind: 'reroute', subtask: run.spec.id, agent: candidate.agent, reason: `over budget (costs ${candidate.cost})` })
          continue
        }
        const prepared = this.#options.prepareInput(candidate.agent, input.value, run.spec.capability)
        if ('input' in prepared) { value = prepared.input; break }
        // Not dispatched: the input does not fit what this agent declares it takes.
        run.unfit.set(candidate.agent, prepared.problem)
        this.#log(now, { kind: 'reroute', subtask: run.spec.id, agent: candidate.agent, reason: `not sent: ${prepared.problem}` })
        effects.push({ type: 'settle', subtask: run.spec.id, agent: candidate.agent, teach: 'nothing' })
      }
      if (candidate === undefined) break
      const attempt = this.#nextAttempt++
      const deadline = Math.min(now + (run.spec.deadlineMs ?? this.#options.attemptDeadlineMs), this.#deadline)
      Object.assign(slot, { attempt, agent: candidate.agent, deadline })
      this.#attempts.set(attempt, run.spec.id)
      run.spent += candidate.cost
      this.#spent += candidate.cost
      this.#log(now, { kind: 'dispatch', subtask: run.spec.id, agent: candidate.agent, attempt })
      effects.push({ type: 'dispatch', subtask: run.spec.id, attempt, agent: candidate.agent, input: value, deadline })
    }
    const empty = run.slots.some(s => s.attempt === undefined && s.output === undefined)
    if (!empty) return effects
    const inFlight = run.slots.some(s => s.attempt !== undefined)
    // A routing round whose every candidate refused the input, with nothing sent or answered: the
    // requester's input is what is wrong. Say what the best match needs, and stop.
    if (freshRoute && !inFlight && run.unfit.size > 0 && !run.slots.some(s => s.output !== undefined) && run.failed.size === 0) {
      const [first] = run.unfit.values()
      return [...effects, ...this.#escalate(run, `the input fits no candidate: ${first!}`, now)]
    }
    // A fresh routing answer that could not fill the slots, with nothing else running: nobody is left.
    if (freshRoute && !inFlight) return [...effects, ...this.#nobodyLeft(run, `no usable agent${this.#failedList(run)}`, now)]
    if (!inFlight) return [...effects, ...this.#route(run, now)]
    return effects // the running attempts may still finish; their failures route again
  }

  /**
   * No agent is left for the empty slots. A trusted subtask that already holds two answers agrees
   * on those (final: no more executions), said in the trace; otherwise the subtask escalates.
   */
  #nobodyLeft (run: SubtaskRun, reason: string, now: number): TaskEffect[] {
    const answered = run.slots.filter(s => s.output !== undefined).length
    if (run.spec.trust === undefined || answered < 2) return this.#escalate(run, reason, now)
    this.#log(now, { kind: 'more', subtask: run.spec.id, reason: `${reason}: agreeing on the ${answered} answers there are` })
    run.slots = run.slots.filter(s => s.output !== undefined)
    run.extra = run.spec.trust.extra
    return this.#complete(run, now)
  }

  #affordable (run: SubtaskRun, candidate: Candidate): boolean {
    const subtaskLeft = (run.spec.budget ?? Infinity) - run.spent
    const taskLeft = (this.spec.budget ?? Infinity) - this.#spent
    return candidate.cost <= subtaskLeft && candidate.cost <= taskLeft
  }

  #reroute (run: SubtaskRun, slot: Slot, attempt: number, reason: string, now: number): TaskEffect[] {
    this.#attempts.delete(attempt)
    const agent = slot.agent!
    run.failed.add(agent)
    delete slot.attempt
    delete slot.agent
    delete slot.deadline
    this.#log(now, { kind: 'reroute', subtask: run.spec.id, agent, attempt, reason })
    return this.#fill(run, now, false)
  }

  #complete (run: SubtaskRun, now: number): TaskEffect[] {
    if (run.spec.trust !== undefined) {
      run.status = 'agreeing'
      const final = run.extra >= run.spec.trust.extra
      return [{ type: 'agree', subtask: run.spec.id, attempts: run.slots.map(s => ({ attempt: s.answered!, agent: s.agent! })), final }]
    }
    const outputs = run.slots.map(s => s.output!.value)
    const aggregated = outputs.length === 1 ? { value: outputs[0] } : this.#options.aggregate(outputs)
    if ('escalate' in aggregated) return this.#escalate(run, aggregated.escalate, now)
    return this.#finish(run, aggregated.value, now)
  }

  #finish (run: SubtaskRun, value: unknown, now: number): TaskEffect[] {
    invariant(this.#status === 'running' && run.status !== 'done', () => `task: subtask "${run.spec.id}" finishing while it is ${run.status} and the task ${this.#status}`)
    invariant(![...this.#attempts.values()].includes(run.spec.id), () => `task: subtask "${run.spec.id}" done with an attempt still pending`)
    run.output = value
    run.status = 'done'
    this.#log(now, { kind: 'done', subtask: run.spec.id })
    const effects: TaskEffect[] = []
    for (const next of this.#runs.values()) {
      if (next.status === 'waiting' && next.spec.dependsOn.every(d => this.#runs.get(d)!.status === 'done')) effects.push(...this.#route(next, now))
    }
    if ([...this.#runs.values()].every(r => r.status === 'done')) effects.push(...this.#end('done', undefined, now))
    return effects
  }

  /**
   * A subtask that cannot finish ends the task: its dependents could never run. `inputVerdict`:
   * `why` already says the input was refused, and by whom.
   */
  #escalate (run: SubtaskRun, why: string, now: number, inputVerdict = false): TaskEffect[] {
    // Nobody left after an agent said the input is wrong: that is what the user needs to hear.
    const reason = run.inputClaims.length > 0 && !inputVerdict
      ? `the input was refused by ${run.inputClaims.join(', ')}: ${run.inputReason ?? ''}; no other agent was left to ask (fix the input, or add agents)`
      : why
    run.status = 'escalated'
    this.#log(now, { kind: 'escalate', subtask: run.spec.id, reason })
    // Input-error reports nobody contradicted teach nothing: the input may well have been wrong.
    const settled: TaskEffect[] = run.inputClaims.map(agent => ({ type: 'settle', subtask: run.spec.id, agent, teach: 'nothing' }))
    run.inputClaims = []
    return [...settled, ...this.#end('escalated', `subtask "${run.spec.id}": ${reason}`, now)]
  }

  #end (status: Exclude<TaskStatus, 'running'>, reason: string | undefined, now: number): TaskEffect[] {
    invariant(this.#status === 'running', () => `task: ending as ${status} after it ended as ${this.#status}`)
    const effects: TaskEffect[] = []
    for (const [attempt, subtask] of this.#attempts) {
      const run = this.#runs.get(subtask)!
      const slot = run.slots.find(s => s.attempt === attempt)!
      effects.push({ type: 'cancel', subtask, attempt, agent: slot.agent!, why: 'task-ended' })
      this.#log(now, { kind: 'cancel', subtask, agent: slot.agent, attempt, reason: status === 'done' ? 'task finished' : reason })
    }
    this.#attempts.clear()
    for (const run of this.#runs.values()) if (run.status !== 'done' && run.status !== 'escalated') run.status = 'cancelled'
    this.#status = status
    this.#reason = reason
    if (status === 'escalated' && !this.trace.some(t => t.kind === 'escalate')) this.#log(now, { kind: 'escalate', reason })
    return [...effects, { type: 'finished', status, ...(reason !== undefined ? { reason } : {}) }]
  }

  #input (run: SubtaskRun): { value: unknown } | { error: string } {
    try {
      return { value: substitute(run.spec.input, id => this.#runs.get(id)?.output) }
    } catch (err) {
      if (err instanceof PointerError) return { error: `input reference: ${err.message}` }
      throw err
    }
  }

  #failedList (run: SubtaskRun): string {
    return run.failed.size > 0 ? ` (failed here: ${[...run.failed].join(', ')})` : ''
  }

  #timer (): TaskEffect[] {
    if (this.#status !== 'running') return []
    let at = this.#deadline
    for (const [attempt, subtask] of this.#attempts) {
      const deadline = this.#runs.get(subtask)!.slots.find(s => s.attempt === attempt)?.deadline
      if (deadline !== undefined) at = Math.min(at, deadline)
    }
    if (at === Infinity || at >= this.#wakeAt) return []
    this.#wakeAt = at
    return [{ type: 'timer', at }]
  }

  #log (at: number, entry: Omit<TraceEntry, 'at'>): void {
    this.trace.push({ at, ...entry })
  }
}

/** Replaces every `{ $from, path? }` in `input` with the referenced output. */
export function substitute (input: unknown, output: (subtask: string) => unknown): unknown {
  if (Array.isArray(input)) return input.map(v => substitute(v, output))
  if (typeof input !== 'object' || input === null) return input
  const o = input as Record<string, unknown>
  if (typeof o.$from === 'string') return resolvePointer(output(o.$from), typeof o.path === 'string' ? o.path : '')
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, substitute(v, output)]))
}
