/**
 * What happens on a peer, as one stream of small JSON events: tasks (every trace entry as it is
 * recorded: routes, dispatches, reroutes, escalations), consensus, gossip verdicts, agents joining
 * and leaving, refusals and what a restart recovered. Logs, metrics and the dashboard's live view
 * all read this one stream, so nothing is visible in one and missing from another.
 *
 * @example
 * ```ts
 * const off = peer.activity.subscribe(e => { if (e.type === 'task-trace' && e.entry.kind === 'reroute') … })
 * peer.activity.recent()   // the last events, oldest first (a dashboard that just opened)
 * off()
 * ```
 */
import type { Logger } from '@libp2p/interface'
import type { TraceEntry } from '../../protocols/task/index.ts'

export type ActivityBody =
  /** `dependsOn`: each subtask's prerequisites (the task's DAG). */
  | { type: 'task-submitted', task: string, subtasks: string[], dependsOn: Record<string, string[]> }
  /** One entry of a task's trace, as the task machine recorded it. */
  | { type: 'task-trace', task: string, entry: TraceEntry }
  | { type: 'task-finished', task: string, status: string, reason?: string, spent: number }
  /** A task the last run left unfinished, ended at start. */
  | { type: 'task-ended-by-restart', task: string, reason: string }
  | { type: 'store-damaged', file: string, keptAs: string, error: string }
  | { type: 'stale-temp-files-removed', files: string[] }
  | { type: 'consensus-committed', instance: string, outcome: 'answer' | 'escalate', requester: boolean }
  | { type: 'consensus-accepted', instance: string }
  | { type: 'consensus-timeout', instance: string, reason: string }
  /** An unfinished instance this peer was a member of, given up (its requester went silent). */
  | { type: 'consensus-abandoned', instance: string, reason: string }
  | { type: 'consensus-rejected', from: string, reason: string }
  | { type: 'equivocation', host: string, source: 'capability' | 'consensus' }
  | { type: 'gossip-rejected', from: string | undefined, reason: string }
  | { type: 'agent-added', agent: string, version: number }
  | { type: 'agent-removed', agent: string, reason: string }
  | { type: 'peer-refused', peer: string, reason: string }

/** An event with its place in the stream and when it happened (ms since the epoch). */
export type ActivityEvent = ActivityBody & { seq: number, at: number }

export type ActivityListener = (event: ActivityEvent) => void

/** How many recent events are kept for late readers. */
const RECENT = 1000

export class Activity {
  readonly #listeners = new Set<ActivityListener>()
  readonly #recent: ActivityEvent[] = []
  readonly #now: () => number
  readonly #log: Pick<Logger, 'error'> | undefined
  #seq = 0

  constructor (now: () => number = Date.now, log?: Pick<Logger, 'error'>) {
    this.#now = now
    this.#log = log
  }

  emit (body: ActivityBody): void {
    const event = { ...body, seq: ++this.#seq, at: this.#now() } as ActivityEvent
    this.#recent.push(event)
    if (this.#recent.length > RECENT) this.#recent.splice(0, this.#recent.length - RECENT)
    for (const listener of this.#listeners) {
      // A reader's bug must not stop the others (or the task that emitted).
      try { listener(event) } catch (err) { this.#log?.error('activity listener failed on %s: %e', event.type, err) }
    }
  }

  /** Calls `listener` for every event from now on; returns the unsubscribe. */
  subscribe (listener: ActivityListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** The last events (at most 1000), oldest first; `after` keeps only those with a larger seq. */
  recent (after = 0): ActivityEvent[] {
    return this.#recent.filter(e => e.seq > after)
  }

  get seq (): number { return this.#seq }
}
