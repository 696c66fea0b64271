/**
 * The log of what happens on a peer, read from its activity stream: reroutes and escalations
 * (warn), rejections of gossip, consensus messages and peers (rate-limited per reason: a hostile
 * peer cannot flood the log, and what was held back is counted), what a restart recovered, consensus
 * timeouts, tasks submitted and finished, agents added and removed; dispatch, route and result at
 * debug. Every string a peer could choose is clipped and escaped.
 */
import type { Level, Logger } from 'pino'
import type { Recovered } from '../peer.ts'
import type { Activity, ActivityEvent } from '../services/activity.ts'
import { RESTARTED } from '../services/tasks.ts'
import { clip, logEvent } from './logger.ts'

export interface RejectionBudget {
  /** Lines per reason per window; the rest are counted. */
  perWindow: number
  windowMs: number
  /** Distinct reasons tracked per event; beyond that, new reasons share one budget. */
  maxReasons: number
}

export const REJECTION_BUDGET: RejectionBudget = { perWindow: 5, windowMs: 60_000, maxReasons: 64 }

/** What a window held back, said once it ends. */
export interface Suppressed { event: string, reason: string, suppressed: number, windowMs: number }

const OTHER_REASONS = '(other reasons)'

/** Lets `perWindow` lines through per event and reason in each window and counts the rest. */
export class RejectionLimiter {
  readonly #windows = new Map<string, { event: string, reason: string, start: number, logged: number, suppressed: number }>()
  /** Windows open per event. */
  readonly #open = new Map<string, number>()
  readonly #budget: RejectionBudget
  readonly #now: () => number

  constructor (budget: RejectionBudget = REJECTION_BUDGET, now: () => number = Date.now) {
    this.#budget = budget
    this.#now = now
  }

  /** Whether to log this one; `ended` gets the count of a window of the same reason that just ended. */
  admit (event: string, reason: string, ended: (s: Suppressed) => void): boolean {
    const now = this.#now()
    let key = `${event}\n${reason}`
    if (!this.#windows.has(key) && (this.#open.get(event) ?? 0) >= this.#budget.maxReasons) {
      reason = OTHER_REASONS
      key = `${event}\n${reason}`
    }
    let w = this.#windows.get(key)
    if (w !== undefined && now - w.start >= this.#budget.windowMs) {
      if (w.suppressed > 0) ended(this.#said(w, now))
      w.start = now
      w.logged = 0
      w.suppressed = 0
    }
    if (w === undefined) {
      w = { event, reason, start: now, logged: 0, suppressed: 0 }
      this.#windows.set(key, w)
      this.#open.set(event, (this.#open.get(event) ?? 0) + 1)
    }
    if (w.logged < this.#budget.perWindow) {
      w.logged++
      return true
    }
    w.suppressed++
    return false
  }

  /** Counts of the windows that ended (all of them with `all`), each said once; ended windows forgotten. */
  drain (all = false): Suppressed[] {
    const now = this.#now()
    const out: Suppressed[] = []
    for (const [key, w] of this.#windows) {
      if (!all && now - w.start < this.#budget.windowMs) continue
      if (w.suppressed > 0) out.push(this.#said(w, now))
      this.#windows.delete(key)
      this.#open.set(w.event, (this.#open.get(w.event) ?? 1) - 1)
    }
    return out
  }

  #said (w: { event: string, reason: string, start: number, suppressed: number }, now: number): Suppressed {
    return { event: w.event, reason: w.reason, suppressed: w.suppressed, windowMs: now - w.start }
  }
}

/** What one activity event logs, or undefined for nothing. */
interface LogLine { level: Level, event: string, fields: Record<string, unknown>, text: string, limit?: string }

/** Peer-chosen strings, bounded. */
const s = (v: string | undefined): string | undefined => v === undefined ? undefined : clip(v)
const list = (l: readonly string[], max = 50): string[] => [...l.slice(0, max).map(v => clip(v)), ...l.length > max ? [`…(+${l.length - max} more)`] : []]
/** Only the fields that are set: absent ones stay out of the record. */
const defined = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))

const TRACE_LEVELS: Partial<Record<string, Level>> = { reroute: 'warn', escalate: 'warn', start: 'debug', route: 'debug', dispatch: 'debug', result: 'debug', cancel: 'debug', done: 'debug', agree: 'debug', more: 'debug' }

export function lineFor (e: ActivityEvent): LogLine | undefined {
  switch (e.type) {
    case 'task-submitted':
      return { level: 'info', event: e.type, fields: { task: s(e.task), subtasks: list(e.subtasks) }, text: `task ${s(e.task)} submitted (${e.subtasks.length} subtask${e.subtasks.length === 1 ? '' : 's'})` }
    case 'task-trace': {
      const t = e.entry
      const fields = defined({ task: s(e.task), subtask: s(t.subtask), attempt: t.attempt, agent: s(t.agent), reason: s(t.reason) })
      const what = [t.subtask !== undefined ? `subtask ${s(t.subtask)}` : undefined, t.agent !== undefined ? `agent ${s(t.agent)}` : undefined, t.attempt !== undefined ? `attempt ${t.attempt}` : undefined].filter(Boolean).join(', ')
      return { level: TRACE_LEVELS[t.kind] ?? 'debug', event: `task-${t.kind}`, fields, text: `task ${s(e.task)} ${t.kind}${what !== '' ? ` (${what})` : ''}${t.reason !== undefined ? `: ${s(t.reason)}` : ''}` }
    }
    case 'task-finished':
      return { level: 'info', event: e.type, fields: defined({ task: s(e.task), status: e.status, reason: s(e.reason), spent: e.spent }), text: `task ${s(e.task)} ${e.status}${e.reason !== undefined ? `: ${s(e.reason)}` : ''}` }
    case 'task-ended-by-restart':
      return { level: 'warn', event: e.type, fields: { task: s(e.task), reason: e.reason }, text: `task ${s(e.task)} was running when the peer stopped: ${e.reason}` }
    case 'store-damaged':
      return { level: 'error', event: e.type, fields: { file: e.file, keptAs: e.keptAs, error: clip(e.error, 1000) }, text: `${e.file} was damaged and is kept as ${e.keptAs}: ${clip(e.error, 1000)}` }
    case 'stale-temp-files-removed':
      return { level: 'info', event: e.type, fields: { count: e.files.length, files: e.files.join(' ') }, text: `removed ${e.files.length} temporary file${e.files.length === 1 ? '' : 's'} a crash left` }
    case 'consensus-committed':
      return { level: 'info', event: e.type, fields: { instance: s(e.instance), outcome: e.outcome, requester: e.requester }, text: `consensus ${s(e.instance)} committed: ${e.outcome}` }
    case 'consensus-accepted':
      return { level: 'debug', event: e.type, fields: { instance: s(e.instance) }, text: `consensus ${s(e.instance)} accepted` }
    case 'consensus-timeout':
    case 'consensus-abandoned':
      return { level: 'warn', event: e.type, fields: { instance: s(e.instance), reason: s(e.reason) }, text: `consensus ${s(e.instance)} ${e.type === 'consensus-timeout' ? 'timed out' : 'abandoned'}: ${s(e.reason)}` }
    case 'consensus-rejected':
    case 'gossip-rejected':
      return { level: 'warn', event: e.type, fields: defined({ from: s(e.from), reason: s(e.reason) }), text: `${e.type === 'gossip-rejected' ? 'gossip' : 'consensus message'} from ${s(e.from) ?? 'unknown'} rejected: ${s(e.reason)}`, limit: clip(e.reason, 200) }
    case 'peer-refused':
      // `refused` is the name `agentmesh node` has always used for this.
      return { level: 'info', event: 'refused', fields: { peer: s(e.peer), reason: s(e.reason) }, text: `refused ${s(e.peer)}: ${s(e.reason)}`, limit: clip(e.reason, 200) }
    case 'equivocation':
      return { level: 'warn', event: e.type, fields: { host: s(e.host), source: e.source }, text: `${s(e.host)} signed two different ${e.source === 'capability' ? 'adverts' : 'consensus messages'} for one slot` }
    case 'agent-added':
      return { level: 'info', event: e.type, fields: { agent: s(e.agent), version: e.version }, text: `agent ${s(e.agent)} added (version ${e.version})` }
    case 'agent-removed':
      return { level: 'info', event: e.type, fields: { agent: s(e.agent), reason: s(e.reason) }, text: `agent ${s(e.agent)} removed: ${s(e.reason)}` }
    default:
      return undefined
  }
}

/** Recovery events: logged from `peer.recovered` (complete, however many), not from the stream. */
const RECOVERY = new Set<string>(['task-ended-by-restart', 'store-damaged', 'stale-temp-files-removed'])

export interface ActivityLogOptions {
  budget?: RejectionBudget
  now?: () => number
  /** What the last run left, said once at start. */
  recovered?: Recovered
}

/**
 * Logs the events that already happened (what the restart recovered, then the recent stream) and
 * every event from now on; returns the stop, which says what rate limiting still held back.
 */
export function logActivity (activity: Activity, log: Logger, options: ActivityLogOptions = {}): () => void {
  const budget = options.budget ?? REJECTION_BUDGET
  const limiter = new RejectionLimiter(budget, options.now)
  const sayHeldBack = (x: Suppressed): void => {
    logEvent(log, 'warn', 'log-suppressed', { of: x.event, reason: clip(x.reason), suppressed: x.suppressed, windowMs: x.windowMs },
      `${x.suppressed} more ${x.event} line${x.suppressed === 1 ? '' : 's'} (${clip(x.reason)}) not logged in the last ${Math.round(x.windowMs / 1000)} s`)
  }
  const write = (e: ActivityEvent): void => {
    const line = lineFor(e)
    if (line === undefined || !log.isLevelEnabled(line.level)) return
    if (line.limit !== undefined && !limiter.admit(line.event, line.limit, sayHeldBack)) return
    logEvent(log, line.level, line.event, line.fields, line.text)
  }
  const recovered = options.recovered
  if (recovered !== undefined) {
    const at = { seq: 0, at: 0 }
    for (const task of recovered.tasksEnded) write({ type: 'task-ended-by-restart', task, reason: RESTARTED, ...at })
    for (const d of recovered.damaged) write({ type: 'store-damaged', ...d, ...at })
    if (recovered.staleTemps.length > 0) write({ type: 'stale-temp-files-removed', files: recovered.staleTemps, ...at })
  }
  // recent() then subscribe() in one tick: nothing falls between them.
  for (const e of activity.recent()) if (recovered === undefined || !RECOVERY.has(e.type)) write(e)
  const off = activity.subscribe(write)
  const timer = setInterval(() => { for (const x of limiter.drain()) sayHeldBack(x) }, budget.windowMs)
  timer.unref()
  return () => {
    off()
    clearInterval(timer)
    for (const x of limiter.drain(true)) sayHeldBack(x)
  }
}
