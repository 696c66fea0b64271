/**
 * Tasks: a DAG of subtasks, parsed strictly, and the pure state machine that runs one.
 *
 * @example
 * ```ts
 * const task = new TaskExecution(parseTask(yaml.parse(text)))
 * run(task.start(now))   // effects: route → find candidates, then task.routed(subtask, candidates, now)
 *                        //          dispatch → call the agent, then task.succeeded(attempt, output, now)
 *                        //                     or task.failure(attempt, reason, now)
 *                        //          timer → task.tick(at); finished → task.status, task.result(), task.trace
 * ```
 */
export { parseTask, findCycle, taskLimits, TaskSpecError } from './schema.ts'
export type { CapabilityRequest, InputRef, SubtaskSpec, TaskSpec, TrustSpec } from './schema.ts'
export { TaskExecution, majority, substitute } from './execution.ts'
export type { Aggregate, Candidate, SubtaskStatus, TaskEffect, TaskExecutionOptions, TaskStatus, TraceEntry, TraceKind } from './execution.ts'
export { describeInput, inputFromText, inputProblem, prepareFromSchema } from './input-check.ts'
export { driveTask } from './driver.ts'
export type { AgreementRequest, AgreementResult, DispatchOutcome, DrivenTask, ExecuteCall, ExecuteResult, RouteAnswer, TaskIo, TaskReport } from './driver.ts'
export { agree } from './agreement-driver.ts'
export type { AgreementIo } from './agreement-driver.ts'
export { CanaryDesk, CANARY_DEADLINE_MS } from './canary-driver.ts'
export type { CanaryIo, CanaryQuestion, CanaryReply, CanaryResult } from './canary-driver.ts'
