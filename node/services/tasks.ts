/**
 * The tasks a peer runs for its user: submitted through the API, kept (bounded) with their
 * status, result and trace until they are asked for.
 */
import { parseTask, type TaskSpec } from '../../protocols/task/index.ts'
import { runTask, type Agreement, type Execute, type Router, type TaskReport, type TaskRun } from './task-runner.ts'

export interface TaskView {
  id: string
  status: 'running' | TaskReport['status']
  report?: TaskReport
}

export class TaskBoard {
  readonly #runs = new Map<string, { run: TaskRun, report?: TaskReport }>()
  readonly #router: Router
  readonly #execute: Execute
  readonly #keep: number
  readonly #agreement: Agreement | undefined
  #next = 1

  constructor (router: Router, execute: Execute, options: { keep?: number, agreement?: Agreement } = {}) {
    this.#router = router
    this.#execute = execute
    this.#keep = options.keep ?? 1000
    this.#agreement = options.agreement
  }

  /** Validates and starts a task; throws TaskSpecError with the reason for a malformed one. */
  submit (value: unknown): TaskRun {
    const spec: TaskSpec = parseTask(value, `task-${this.#next++}`)
    const id = this.#runs.has(spec.id) ? `${spec.id}-${this.#next++}` : spec.id
    const run = runTask({ ...spec, id }, { router: this.#router, execute: this.#execute, ...(this.#agreement === undefined ? {} : { agreement: this.#agreement }) })
    const entry: { run: TaskRun, report?: TaskReport } = { run }
    this.#runs.set(id, entry)
    void run.finished.then(report => { entry.report = report })
    // Forget the oldest finished tasks past the bound; running ones are kept.
    for (const [old, e] of this.#runs) {
      if (this.#runs.size <= this.#keep) break
      if (e.report !== undefined) this.#runs.delete(old)
    }
    return run
  }

  get (id: string): TaskView | undefined {
    const e = this.#runs.get(id)
    if (e === undefined) return undefined
    return e.report === undefined ? { id, status: 'running' } : { id, status: e.report.status, report: e.report }
  }

  cancelAll (reason: string): void {
    for (const e of this.#runs.values()) if (e.report === undefined) e.run.cancel(reason)
  }
}
