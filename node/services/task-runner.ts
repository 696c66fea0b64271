/**
 * Drives one task (protocols/task) to its end on a peer: the shared requester driver
 * (protocols/task/driver.ts, which the simulator drives too) with the peer's I/O: routes subtasks
 * through a Router, runs attempts with remote execution, fires deadlines, and tells the router
 * how each dispatch went.
 *
 * @example
 * ```ts
 * const run = runTask(parseTask(spec), { router, execute: (agent, input, ms, signal) => peer.rpc.execute(agent, input, ms, signal) })
 * const done = await run.finished   // { status, reason?, result, trace }
 * ```
 */
import { driveTask, type AgreementRequest, type AgreementResult, type DispatchOutcome as GenericOutcome, type RouteAnswer, type TaskExecution, type TaskExecutionOptions, type TaskReport, type TaskSpec, type TraceEntry } from '../../protocols/task/index.ts'
import type { CapabilityRequest } from '../../protocols/task/index.ts'
import type { SignRequest } from '../../protocols/rpc/index.ts'
import type { RunResult } from './agent-host.ts'

export type { AgreementRequest, AgreementResult, RouteAnswer, TaskReport }
export type DispatchOutcome = GenericOutcome<RunResult>

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

/**
 * The peer's I/O for the shared driver (protocols/task/driver.ts): promises from the router,
 * the RPC service and the consensus service, the wall clock, and timers.
 */
export function runTask (spec: TaskSpec, deps: { router: Router, execute: Execute, agreement?: Agreement, now?: () => number, options?: TaskExecutionOptions, /** Each trace entry as it is recorded (logs, metrics, the dashboard). */ onTrace?: (entry: TraceEntry) => void }): TaskRun {
  const now = deps.now ?? Date.now
  const controllers = new Map<number, AbortController>()
  let resolve!: (report: TaskReport) => void
  const finished = new Promise<TaskReport>(r => { resolve = r })
  const { agreement } = deps
  const driven = driveTask<RunResult>(spec, {
    now,
    timer: (at, wake) => {
      const timer = setTimeout(wake, Math.max(0, at - now()))
      return () => { clearTimeout(timer) }
    },
    route: (_subtask, request, exclude, done) => {
      deps.router.route(request, exclude).then(done, (err: Error) => { done({ candidates: [], explanation: { error: err.message } }) })
    },
    execute: (call, done) => {
      const controller = new AbortController()
      controllers.set(call.attempt, controller)
      const started = performance.now()
      void deps.execute(call.agent, call.input, Math.max(1, call.deadline - now()), controller.signal, call.sign).then(result => {
        controllers.delete(call.attempt)
        done(result, performance.now() - started)
      })
    },
    cancel: call => {
      controllers.get(call.attempt)?.abort(new Error('abandoned by the task'))
      controllers.delete(call.attempt)
    },
    ...(agreement === undefined
      ? {}
      : {
          agree: (_subtask: string, request: AgreementRequest, done: (result: AgreementResult) => void) => {
            agreement.agree(request).then(done, (err: Error) => { done({ kind: 'escalate', reason: `consensus failed: ${err.message}` }) })
          }
        }),
    outcome: o => { deps.router.outcome?.(o) },
    settle: (subtask, agent, teach) => { deps.router.settle?.(subtask, agent, teach) },
    ...(deps.onTrace === undefined ? {} : { trace: deps.onTrace }),
    finished: resolve
  }, deps.options)
  driven.start()
  return { id: spec.id, execution: driven.execution, finished, cancel: driven.cancel }
}
