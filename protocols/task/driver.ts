/**
 * The requester's task driver, written once: it carries a TaskExecution's effects out through the
 * I/O it is given and feeds the answers back (TigerBeetle's replica takes its message bus, storage
 * and time the same way). A peer plugs in libp2p, the wall clock and promises
 * (node/services/task-runner.ts); the simulator plugs in its modelled network and virtual time
 * (sim/requester.ts). Everything a requester decides about a task (what to sign, what a result
 * teaches the router, when a late result is ignored, when to wake the machine) is here, so the two
 * cannot drift.
 *
 * Callbacks, not promises: the simulator must stay synchronous and deterministic. Each `done`
 * may be called at most once, at any later time (or never: the machine's deadlines cover it).
 *
 * @example
 * ```ts
 * const task = driveTask(spec, { now, timer, route, execute, cancel, finished: report => console.log(report.status) })
 * task.start()
 * task.cancel('user asked')
 * ```
 */
import { canonicalJson, sha256Hex } from '../hash.ts'
import type { SignRequest } from '../rpc/index.ts'
import { TaskExecution, type Candidate, type TaskEffect, type TaskExecutionOptions, type TaskStatus, type TraceEntry } from './execution.ts'
import type { CapabilityRequest, TaskSpec, TrustSpec } from './schema.ts'

export interface RouteAnswer {
  /** Best first. */
  candidates: Candidate[]
  /** Why: scores per candidate, recorded in the task trace as given. */
  explanation?: unknown
}

/** What an execution returned, as far as the driver reads it (a peer's and the simulator's results both fit). */
export type ExecuteResult =
  | { ok: true, output: unknown, /** The answer signed by its host, when asked for (consensus evidence). */ answer?: Uint8Array }
  | { ok: false, kind: string, error: string }

export interface DispatchOutcome<R extends ExecuteResult = ExecuteResult> {
  subtask: string
  agent: string
  result: R
  /** Time of the attempt as the requester saw it (Infinity: it timed out). */
  latencyMs: number
}

/** What a trusted subtask's answers need agreed: the signed answers, keyed for this requester. */
export interface AgreementRequest {
  /** `<task id>/<subtask id>`, unique per requester: what executors signed. */
  key: string
  inputHash: string
  trust: TrustSpec
  answers: Array<{ agent: string, answer: Uint8Array }>
  /** No more executions may be added: commit what there is (possibly an escalation). */
  final: boolean
}

export type AgreementResult =
  | { kind: 'decided', value: unknown, detail?: unknown }
  | { kind: 'more', reason: string }
  | { kind: 'escalate', reason: string, detail?: unknown }

export interface TaskReport {
  id: string
  status: Exclude<TaskStatus, 'running'>
  reason?: string
  result: Record<string, unknown>
  outputs: Record<string, unknown>
  spent: number
  trace: TraceEntry[]
}

/** One dispatch to carry out. `deadline` is absolute, on the driver's clock. */
export interface ExecuteCall {
  attempt: number
  subtask: string
  agent: string
  input: unknown
  deadline: number
  /** Set for a trusted subtask: the result must carry the answer signed by the agent's host. */
  sign?: SignRequest
}

export interface TaskIo<R extends ExecuteResult = ExecuteResult> {
  now: () => number
  /** Calls `wake` at time `at` (or soon after); returns what cancels it. */
  timer: (at: number, wake: () => void) => () => void
  route: (subtask: string, request: CapabilityRequest, exclude: string[], done: (answer: RouteAnswer) => void) => void
  /** `latencyMs`: how long the call took as the requester saw it. */
  execute: (call: ExecuteCall, done: (result: R, latencyMs: number) => void) => void
  /** The attempt was abandoned (timed out, or the task ended): stop it; its result, if any, is ignored. */
  cancel: (call: ExecuteCall) => void
  /** Weighted BFT agreement on a trusted subtask's signed answers (absent: such a subtask escalates). */
  agree?: (subtask: string, request: AgreementRequest, done: (result: AgreementResult) => void) => void
  /** A finished attempt the router learns from; an input-error report waits for `settle`. */
  outcome?: (outcome: DispatchOutcome<R>) => void
  /** What a decision that chose `agent` teaches once the requester knows (see TaskEffect `settle`). */
  settle?: (subtask: string, agent: string, teach: 'nothing' | 'failure') => void
  /** Each trace entry, as it is recorded and before its effects are carried out. */
  trace?: (entry: TraceEntry) => void
  finished: (report: TaskReport) => void
}

export interface DrivenTask {
  readonly execution: TaskExecution
  /** Starts the task: its first effects go out now (the caller may first keep the handle). */
  start: () => void
  cancel: (reason: string) => void
}

export function driveTask<R extends ExecuteResult> (spec: TaskSpec, io: TaskIo<R>, options?: TaskExecutionOptions): DrivenTask {
  const execution = new TaskExecution(spec, options)
  const trustOf = new Map(spec.subtasks.flatMap(s => s.trust === undefined ? [] : [[s.id, s.trust] as const]))
  /** Attempts under way, by attempt number. */
  const inFlight = new Map<number, ExecuteCall>()
  /** Signed answers of trusted subtasks' attempts, and what each subtask's executors were asked to sign. */
  const answers = new Map<number, Uint8Array>()
  const signed = new Map<string, SignRequest>()
  /** The earliest wake-up asked for; a later one waits until it has fired (the machine asks again). */
  let wakeAt = Infinity
  /** Cancels the pending wake-up (a superseded one was cancelled when it was replaced). */
  let pendingWake: (() => void) | undefined
  let ended = false
  let traced = 0

  const run = (effects: TaskEffect[]): void => {
    if (io.trace !== undefined) while (traced < execution.trace.length) io.trace(execution.trace[traced++]!)
    for (const effect of effects) {
      switch (effect.type) {
        case 'route':
          io.route(effect.subtask, effect.request, effect.exclude, answer => run(execution.routed(effect.subtask, answer.candidates, io.now(), answer.explanation)))
          break
        case 'dispatch': {
          const call: ExecuteCall = { attempt: effect.attempt, subtask: effect.subtask, agent: effect.agent, input: effect.input, deadline: effect.deadline }
          if (trustOf.has(effect.subtask)) {
            call.sign = { subtask: `${spec.id}/${effect.subtask}`, inputHash: sha256Hex(canonicalJson(effect.input)) }
            signed.set(effect.subtask, call.sign)
          }
          inFlight.set(call.attempt, call)
          io.execute(call, (result, latencyMs) => {
            // Cancelled (timed out, or the task ended): it teaches nothing more and the machine has moved on.
            if (inFlight.get(call.attempt) !== call) return
            inFlight.delete(call.attempt)
            // "Your input is wrong" teaches nothing yet: the machine settles it (upheld or contradicted).
            if (result.ok || result.kind !== 'input') io.outcome?.({ subtask: call.subtask, agent: call.agent, result, latencyMs })
            const now = io.now()
            if (!result.ok) return run(execution.failure(call.attempt, `${result.kind}: ${result.error}`, now, result.kind))
            if (call.sign !== undefined && result.answer === undefined) {
              return run(execution.failure(call.attempt, 'unsigned: a trusted subtask needs the answer signed by its host', now))
            }
            if (result.answer !== undefined) answers.set(call.attempt, result.answer)
            run(execution.succeeded(call.attempt, result.output, now))
          })
          break
        }
        case 'agree': {
          const sign = signed.get(effect.subtask)!
          if (io.agree === undefined) {
            run(execution.disagreed(effect.subtask, 'this peer runs no consensus service', io.now()))
            break
          }
          const request: AgreementRequest = {
            key: sign.subtask,
            inputHash: sign.inputHash,
            trust: trustOf.get(effect.subtask)!,
            answers: effect.attempts.map(a => ({ agent: a.agent, answer: answers.get(a.attempt)! })),
            final: effect.final
          }
          io.agree(effect.subtask, request, result => {
            const now = io.now()
            run(result.kind === 'decided'
              ? execution.agreed(effect.subtask, result.value, now, result.detail)
              : result.kind === 'more'
                ? execution.more(effect.subtask, result.reason, now)
                : execution.disagreed(effect.subtask, result.reason, now, result.detail))
          })
          break
        }
        case 'cancel': {
          const call = inFlight.get(effect.attempt)
          inFlight.delete(effect.attempt)
          if (call !== undefined) io.cancel(call)
          // A timed-out agent still taught the router something; one cut short by the task's end did not.
          if (effect.why === 'timeout') io.outcome?.({ subtask: effect.subtask, agent: effect.agent, result: { ok: false, kind: 'timeout', error: 'deadline passed' } as R, latencyMs: Infinity })
          break
        }
        case 'settle':
          io.settle?.(effect.subtask, effect.agent, effect.teach)
          break
        case 'timer': {
          if (ended || effect.at >= wakeAt) break
          // An earlier wake-up supersedes the pending one (with timers that cannot be cancelled, as
          // virtual time's, that one still fires: at its time the machine is ticked, harmlessly).
          pendingWake?.()
          const at = wakeAt = effect.at
          const cancel = io.timer(at, () => {
            if (pendingWake === cancel) pendingWake = undefined
            // Superseded by an earlier wake-up, which fired and asked again (or the task ended).
            if (ended || wakeAt !== at) return
            wakeAt = Infinity
            run(execution.tick(io.now()))
          })
          pendingWake = cancel
          break
        }
        case 'finished':
          ended = true
          pendingWake?.()
          pendingWake = undefined
          io.finished({
            id: spec.id,
            status: effect.status,
            ...(effect.reason !== undefined ? { reason: effect.reason } : {}),
            result: execution.result(),
            outputs: execution.outputs(),
            spent: execution.spent,
            trace: execution.trace
          })
          break
      }
    }
  }

  return {
    execution,
    start: () => { run(execution.start(io.now())) },
    cancel: reason => { run(execution.cancel(reason, io.now())) }
  }
}
