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
import { TaskExecution, type Candidate, type TaskEffect, type TaskExecutionOptions, type TaskSpec, type TaskStatus, type TraceEntry } from '../protocols/task/index.ts'
import type { CapabilityRequest } from '../protocols/task/index.ts'
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
  /** Called once per finished attempt (success, failure or timeout). */
  outcome? (outcome: DispatchOutcome): void
}

export type Execute = (agent: string, input: unknown, deadlineMs: number, signal: AbortSignal) => Promise<RunResult>

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

export function runTask (spec: TaskSpec, deps: { router: Router, execute: Execute, now?: () => number, options?: TaskExecutionOptions }): TaskRun {
  const now = deps.now ?? Date.now
  const execution = new TaskExecution(spec, deps.options)
  const inFlight = new Map<number, AbortController>()
  let timer: NodeJS.Timeout | undefined
  let resolve!: (report: TaskReport) => void
  const finished = new Promise<TaskReport>(r => { resolve = r })

  const run = (effects: TaskEffect[]): void => {
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
          deps.execute(effect.agent, effect.input, Math.max(1, effect.deadline - now()), controller.signal).then(result => {
            inFlight.delete(effect.attempt)
            const latencyMs = performance.now() - started
            if (!controller.signal.aborted) deps.router.outcome?.({ subtask: effect.subtask, agent: effect.agent, result, latencyMs })
            run(result.ok
              ? execution.succeeded(effect.attempt, result.output, now())
              : execution.failure(effect.attempt, `${result.kind}: ${result.error}`, now()))
          })
          break
        }
        case 'cancel':
          inFlight.get(effect.attempt)?.abort(new Error('abandoned by the task'))
          inFlight.delete(effect.attempt)
          // A timed-out agent still taught the router something; one cut short by the task's end did not.
          if (effect.why === 'timeout') deps.router.outcome?.({ subtask: effect.subtask, agent: effect.agent, result: { ok: false, kind: 'timeout', error: 'deadline passed' }, latencyMs: Infinity })
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
