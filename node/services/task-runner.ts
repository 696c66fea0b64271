/**
 * Drives one task (protocols/task) to its end: routes subtasks through a Router, runs attempts
 * with remote execution, fires deadlines, and tells the router how each dispatch went.
 *
 * @example
 * ```ts
 * const run = runTask(parseTask(spec), { router, execute: (agent, input, ms, signal) => peer.rpc.execute(agent, input, ms, signal) })
 * const done = await run.finished   // { status, reason?, result, trace }
 * ```
 */
import { TaskExecution, type Candidate, type TaskEffect, type TaskExecutionOptions, type TaskSpec, type TaskStatus, type TraceEntry } from '../../protocols/task/index.ts'
import type { CapabilityRequest } from '../../protocols/task/index.ts'
import { canonicalJson, sha256Hex } from '../../protocols/hash.ts'
import type { SignRequest } from '../../protocols/rpc/index.ts'
import type { TrustSpec } from '../../protocols/task/index.ts'
import type { RunResult } from './agent-host.ts'

export interface RouteAnswer {
  /** Best first. */
  candidates: Candidate[]
  /** Why: scores per candidate, recorded in the task trace as given. */
  explanation?: unknown
}

export interface DispatchOutcome {
  subtask: string
  agent: string
  result: RunResult
  /** Wall time of the attempt as the requester saw it. */
  latencyMs: number
}

/** Finds candidates for a subtask and learns from how dispatches went. */
export interface Router {
  route (request: CapabilityRequest, exclude: string[]): Promise<RouteAnswer>
  /** Called once per finished attempt (success, failure or timeout), except an input-error report, which waits for `settle`. */
  outcome? (outcome: DispatchOutcome): void
  /** What a decision that chose `agent` teaches once the requester knows (see TaskEffect `settle`). */
  settle? (subtask: string, agent: string, teach: 'nothing' | 'failure'): void
}

/** With `sign`, the result must carry the answer signed by the agent's host (trusted subtasks). */
export type Execute = (agent: string, input: unknown, deadlineMs: number, signal: AbortSignal, sign?: SignRequest) => Promise<RunResult>

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

/** Runs weighted BFT consensus for trusted subtasks (the peer's consensus service). */
export interface Agreement {
  agree (request: AgreementRequest): Promise<AgreementResult>
}

export interface TaskRun {
  readonly id: string
  readonly execution: TaskExecution
  readonly finished: Promise<TaskReport>
  cancel (reason: string): void
}

export interface TaskReport {
  id: string
  status: Exclude<TaskStatus, 'running'>
  reason?: string
  result: Record<string, unknown>
  outputs: Record<string, unknown>
  spent: number
  trace: TraceEntry[]
}

export function runTask (spec: TaskSpec, deps: { router: Router, execute: Execute, agreement?: Agreement, now?: () => number, options?: TaskExecutionOptions, /** Each trace entry as it is recorded (logs, metrics, the dashboard). */ onTrace?: (entry: TraceEntry) => void }): TaskRun {
  const now = deps.now ?? Date.now
  const execution = new TaskExecution(spec, deps.options)
  const inFlight = new Map<number, AbortController>()
  const trustOf = new Map(spec.subtasks.flatMap(s => s.trust === undefined ? [] : [[s.id, s.trust] as const]))
  /** Signed answers of trusted subtasks' attempts, and what they were asked to sign. */
  const answers = new Map<number, Uint8Array>()
  const signed = new Map<string, SignRequest>()
  let timer: NodeJS.Timeout | undefined
  let resolve!: (report: TaskReport) => void
  const finished = new Promise<TaskReport>(r => { resolve = r })
  let traced = 0

  const run = (effects: TaskEffect[]): void => {
    // Entries the machine recorded for the event that produced these effects, said before acting.
    if (deps.onTrace !== undefined) while (traced < execution.trace.length) deps.onTrace(execution.trace[traced++]!)
    for (const effect of effects) {
      switch (effect.type) {
        case 'route':
          deps.router.route(effect.request, effect.exclude).then(
            answer => run(execution.routed(effect.subtask, answer.candidates, now(), answer.explanation)),
            (err: Error) => run(execution.routed(effect.subtask, [], now(), { error: err.message })))
          break
        case 'dispatch': {
          const controller = new AbortController()
          inFlight.set(effect.attempt, controller)
          const started = performance.now()
          let sign: SignRequest | undefined
          if (trustOf.has(effect.subtask)) {
            sign = { subtask: `${spec.id}/${effect.subtask}`, inputHash: sha256Hex(canonicalJson(effect.input)) }
            signed.set(effect.subtask, sign)
          }
          deps.execute(effect.agent, effect.input, Math.max(1, effect.deadline - now()), controller.signal, sign).then(result => {
            inFlight.delete(effect.attempt)
            const latencyMs = performance.now() - started
            // "Your input is wrong" teaches nothing yet: the machine settles it (upheld or contradicted).
            const inputClaim = !result.ok && result.kind === 'input'
            if (!controller.signal.aborted && !inputClaim) deps.router.outcome?.({ subtask: effect.subtask, agent: effect.agent, result, latencyMs })
            if (result.ok && sign !== undefined && result.answer === undefined) {
              return run(execution.failure(effect.attempt, 'unsigned: a trusted subtask needs the answer signed by its host', now()))
            }
            if (result.ok && result.answer !== undefined) answers.set(effect.attempt, result.answer)
            run(result.ok
              ? execution.succeeded(effect.attempt, result.output, now())
              : execution.failure(effect.attempt, `${result.kind}: ${result.error}`, now(), result.kind))
          })
          break
        }
        case 'agree': {
          const trust = trustOf.get(effect.subtask)!
          const sign = signed.get(effect.subtask)!
          if (deps.agreement === undefined) {
            run(execution.disagreed(effect.subtask, 'this peer runs no consensus service', now()))
            break
          }
          const request: AgreementRequest = {
            key: sign.subtask,
            inputHash: sign.inputHash,
            trust,
            answers: effect.attempts.map(a => ({ agent: a.agent, answer: answers.get(a.attempt)! })),
            final: effect.final
          }
          deps.agreement.agree(request).then(
            result => run(result.kind === 'decided'
              ? execution.agreed(effect.subtask, result.value, now(), result.detail)
              : result.kind === 'more'
                ? execution.more(effect.subtask, result.reason, now())
                : execution.disagreed(effect.subtask, result.reason, now(), result.detail)),
            (err: Error) => run(execution.disagreed(effect.subtask, `consensus failed: ${err.message}`, now())))
          break
        }
        case 'cancel':
          inFlight.get(effect.attempt)?.abort(new Error('abandoned by the task'))
          inFlight.delete(effect.attempt)
          // A timed-out agent still taught the router something; one cut short by the task's end did not.
          if (effect.why === 'timeout') deps.router.outcome?.({ subtask: effect.subtask, agent: effect.agent, result: { ok: false, kind: 'timeout', error: 'deadline passed' }, latencyMs: Infinity })
          break
        case 'settle':
          deps.router.settle?.(effect.subtask, effect.agent, effect.teach)
          break
        case 'timer':
          clearTimeout(timer)
          timer = setTimeout(() => run(execution.tick(now())), Math.max(0, effect.at - now()))
          break
        case 'finished':
          clearTimeout(timer)
          resolve({
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

  run(execution.start(now()))
  return { id: spec.id, execution, finished, cancel: (reason) => run(execution.cancel(reason, now())) }
}
