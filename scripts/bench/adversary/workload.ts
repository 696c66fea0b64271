/**
 * The honest users: every honest peer submits a task through its own API at a steady pace,
 * alternating normal and trusted ones (a trusted subtask runs on several agents and commits by
 * consensus, like node/agents/demo-trusted-task.yaml). A task counts as a success only when it is
 * done with the right answer.
 */
import { failureOf, postJson } from './api.ts'
import type { HonestPeer } from './harness.ts'

export type TaskKind = 'normal' | 'trusted'
export interface TaskCounts { submitted: number, ok: number }

export interface WorkloadResult {
  normal: TaskCounts
  trusted: TaskCounts
  /** Why tasks failed, most frequent first. */
  failures: Record<string, number>
}

export interface WorkloadOptions {
  /** Each peer submits one task every this many ms. */
  intervalMs: number
  normalDeadlineMs: number
  trustedDeadlineMs: number
}

export class Workload {
  readonly #counts: Record<TaskKind, TaskCounts> = { normal: { submitted: 0, ok: 0 }, trusted: { submitted: 0, ok: 0 } }
  readonly #failures = new Map<string, number>()
  readonly #inFlight = new Set<Promise<void>>()
  readonly #options: WorkloadOptions
  #stopped = false

  constructor (honest: HonestPeer[], options: WorkloadOptions) {
    this.#options = options
    honest.forEach((h, i) => { void this.#loop(h, i, honest.length) })
  }

  /** Stops submitting, waits up to `drainMs` for tasks in flight; those still running count as failed. */
  async finish (drainMs: number): Promise<WorkloadResult> {
    this.#stopped = true // loops asleep between submissions see it when they wake, and submit nothing more
    await Promise.race([Promise.all(this.#inFlight), new Promise(resolve => setTimeout(resolve, drainMs))])
    if (this.#inFlight.size > 0) this.#fail(`still running after the drain (${this.#inFlight.size})`, this.#inFlight.size)
    const failures = Object.fromEntries([...this.#failures].sort((a, b) => b[1] - a[1]).slice(0, 8))
    return { normal: { ...this.#counts.normal }, trusted: { ...this.#counts.trusted }, failures }
  }

  async #loop (h: HonestPeer, index: number, peers: number): Promise<void> {
    const { intervalMs } = this.#options
    await sleep((index * intervalMs) / peers) // spread the peers' submissions over the interval
    for (let n = 0; !this.#stopped; n++) {
      const kind: TaskKind = (n + index) % 2 === 0 ? 'normal' : 'trusted'
      if (h.crashed !== undefined) {
        // The user of a crashed peer still wants their tasks run: each one is a failure.
        this.#counts[kind].submitted++
        this.#fail(`${kind}: peer crashed`)
        await sleep(intervalMs)
        continue
      }
      const p = this.#run(h, kind, `${kind}-${index}-${n}`).finally(() => this.#inFlight.delete(p))
      this.#inFlight.add(p)
      await sleep(intervalMs)
    }
  }

  async #run (h: HonestPeer, kind: TaskKind, id: string): Promise<void> {
    const a = 2 + Math.floor(Math.random() * 97)
    const b = 2 + Math.floor(Math.random() * 97)
    const deadlineMs = kind === 'trusted' ? this.#options.trustedDeadlineMs : this.#options.normalDeadlineMs
    const task = {
      id,
      deadlineMs,
      subtasks: [{ id: 'calc', capability: { text: 'calculate an arithmetic expression', skills: ['arithmetic'] }, input: { expression: `${a} * ${b} + 1` }, ...(kind === 'trusted' ? { trust: true } : {}) }]
    }
    this.#counts[kind].submitted++
    try {
      const { status, body } = await postJson(h.apiPort, '/tasks?wait=1', task, deadlineMs + 10_000)
      const report = body as { status?: string, reason?: string, result?: { calc?: { value?: unknown } } }
      if (status === 200 && report.status === 'done' && report.result?.calc?.value === a * b + 1) {
        this.#counts[kind].ok++
      } else {
        this.#fail(`${kind}: ${status === 200 ? `${report.status ?? '?'} ${(report.reason ?? '').slice(0, 60)}` : `http ${status}`}`)
      }
    } catch (err) {
      this.#fail(`${kind}: ${failureOf(err)}`)
    }
  }

  #fail (reason: string, n = 1): void { this.#failures.set(reason, (this.#failures.get(reason) ?? 0) + n) }
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
