/**
 * The tasks a peer runs for its user: submitted through the API (or MQTT), kept with their status,
 * result and trace. With a journal (the peer's `tasks.sqlite`) a task is on disk before its first
 * dispatch and its report when it ends: after a restart or a crash `get` still answers, a task
 * that was running is ended loudly ("requester restarted"), and submitting an id again is
 * idempotent: the same task, not a second run.
 */
import { parseTask, TaskSpecError, type TaskExecutionOptions, type TaskSpec } from '../../protocols/task/index.ts'
import type { Logger } from '@libp2p/interface'
import { canonicalJson } from '../../protocols/hash.ts'
import type { TaskJournal } from '../storage/task-journal.ts'
import type { Activity } from './activity.ts'
import { runTask, type Agreement, type Execute, type Router, type TaskReport } from './task-runner.ts'

export interface TaskView {
  id: string
  status: 'running' | TaskReport['status']
  report?: TaskReport
}

/** A submitted task: running now, or (an id submitted before) already known. */
export interface SubmittedTask {
  readonly id: string
  readonly finished: Promise<TaskReport>
  cancel (reason: string): void
}

/** What ended a task that was running when its peer stopped. */
export const RESTARTED = 'requester restarted: the task was running when this peer stopped or crashed, and its attempts in flight were lost — submit it again under a new id to run it'

export class TaskBoard {
  readonly #runs = new Map<string, { run: SubmittedTask, spec: string, report?: TaskReport }>()
  readonly #router: Router
  readonly #execute: Execute
  readonly #keep: number
  readonly #agreement: Agreement | undefined
  readonly #journal: TaskJournal | undefined
  readonly #now: () => number
  readonly #activity: Activity | undefined
  readonly #log: Pick<Logger, 'error'> | undefined
  #next: number

  readonly #prepareInput: TaskExecutionOptions['prepareInput']

  constructor (router: Router, execute: Execute, options: { keep?: number, agreement?: Agreement, journal?: TaskJournal, now?: () => number, activity?: Activity, /** Where a task that could not be journaled is said (the peer's logger). */ log?: Pick<Logger, 'error'>, /** Checks (and fills in) a subtask's input against the chosen agent's schema before dispatch. */ prepareInput?: TaskExecutionOptions['prepareInput'] } = {}) {
    this.#prepareInput = options.prepareInput
    this.#router = router
    this.#execute = execute
    this.#keep = options.keep ?? 1000
    this.#agreement = options.agreement
    this.#journal = options.journal
    this.#now = options.now ?? Date.now
    this.#activity = options.activity
    this.#log = options.log
    this.#next = (this.#journal?.highestGenerated() ?? 0) + 1
  }

  /**
   * Ends the tasks the journal holds as running (the peer stopped or crashed under them), each
   * escalated with RESTARTED; returns their ids so the peer can say so.
   */
  recover (): string[] {
    const ended: string[] = []
    for (const task of this.#journal?.unfinished() ?? []) {
      const at = this.#now()
      const report: TaskReport = { id: task.id, status: 'escalated', reason: RESTARTED, result: {}, outputs: {}, spent: 0, trace: [{ at, kind: 'escalate', reason: RESTARTED }] }
      this.#journal!.finished(task.id, report, at)
      ended.push(task.id)
      this.#activity?.emit({ type: 'task-ended-by-restart', task: task.id, reason: RESTARTED })
    }
    return ended
  }

  /** Validates and starts a task; throws TaskSpecError with the reason for a malformed one. */
  submit (value: unknown): SubmittedTask {
    const spec: TaskSpec = parseTask(value, `task-${this.#next++}`)
    const known = this.#known(spec)
    if (known !== undefined) return known
    // On disk before the first dispatch: a crash from here on cannot lose it.
    this.#journal?.started(spec.id, spec, this.#now())
    const activity = this.#activity
    activity?.emit({ type: 'task-submitted', task: spec.id, subtasks: spec.subtasks.map(s => s.id), dependsOn: Object.fromEntries(spec.subtasks.map(s => [s.id, s.dependsOn])) })
    const run = runTask(spec, {
      router: this.#router,
      execute: this.#execute,
      ...(this.#agreement === undefined ? {} : { agreement: this.#agreement }),
      ...(this.#prepareInput === undefined ? {} : { options: { prepareInput: this.#prepareInput } }),
      ...(activity === undefined ? {} : { onTrace: entry => { activity.emit({ type: 'task-trace', task: spec.id, entry }) } })
    })
    const entry: { run: SubmittedTask, spec: string, report?: TaskReport } = { run, spec: canonicalJson(spec) }
    this.#runs.set(spec.id, entry)
    void run.finished.then(report => {
      entry.report = report
      activity?.emit({ type: 'task-finished', task: spec.id, status: report.status, ...(report.reason !== undefined ? { reason: report.reason } : {}), spent: report.spent })
      try {
        this.#journal?.finished(spec.id, report, this.#now())
      } catch (err) {
        this.#log?.error('task %s finished (%s) but could not be journaled: %e', spec.id, report.status, err)
      }
    })
    // Forget the oldest finished tasks past the bound (the journal keeps them); running ones are kept.
    for (const [old, e] of this.#runs) {
      if (this.#runs.size <= this.#keep) break
      if (e.report !== undefined) this.#runs.delete(old)
    }
    return run
  }

  get (id: string): TaskView | undefined {
    const e = this.#runs.get(id)
    if (e !== undefined) return e.report === undefined ? { id, status: 'running' } : { id, status: e.report.status, report: e.report }
    const j = this.#journal?.get(id)
    if (j === undefined) return undefined
    return j.report === undefined ? { id, status: j.status } : { id, status: j.report.status, report: j.report }
  }

  cancelAll (reason: string): void {
    for (const e of this.#runs.values()) if (e.report === undefined) e.run.cancel(reason)
  }

  /** Waits until every task's end is journaled (after `cancelAll`, for a clean stop). */
  async settled (): Promise<void> {
    await Promise.all([...this.#runs.values()].map(async e => await e.run.finished.then(() => {})))
  }

  /**
   * A task this board already has under `spec.id`, running or finished. The same id with another
   * spec is refused: an idempotency key names one request, and running the old one silently
   * would answer a question that was not asked.
   */
  #known (spec: TaskSpec): SubmittedTask | undefined {
    const id = spec.id
    const e = this.#runs.get(id)
    const j = e === undefined ? this.#journal?.get(id) : undefined
    const before = e?.spec ?? (j === undefined ? undefined : canonicalJson(j.spec))
    if (before !== undefined && before !== canonicalJson(spec)) throw new TaskSpecError(`task "${id}" was submitted before with a different spec; submitting an id again returns that task, so give this one a new id (or none)`)
    if (e !== undefined) return e.run
    if (j?.report === undefined) return undefined
    const report = j.report
    return { id, finished: Promise.resolve(report), cancel: () => {} }
  }
}
