/**
 * Dispatches waiting for their reward: dispatch id → the agent and the context it was chosen in.
 * Bounded by count (the oldest is dropped first) and by age (`now` comes in from the caller), so
 * outcomes that never arrive cannot grow memory. Ids that expired recently are remembered (bounded
 * too) only to say why a late report is ignored.
 *
 * Contexts live in one growing Float64Array with a free list of fixed-width slots: a small typed
 * array per dispatch costs more to allocate (an off-heap backing store, ~0.4 µs) than the whole
 * LinUCB decision.
 */
import { finite, list, numbers, record, StateError, text, toNumbers } from './persist.ts'

export interface PendingEntry {
  agent: string
  /** Where the context sits: `book.contexts[slot · width …]`. */
  slot: number
  /** `now` at dispatch (ms). */
  at: number
  /** The answer (success, latency, cost) has been learned from. */
  answered: boolean
  /** Agreement received: already added if answered, else held until the answer comes. */
  agreement: number | undefined
}

export interface PendingJson {
  id: string
  agent: string
  context: number[]
  at: number
  answered: boolean
  agreement?: number
}

export class PendingBook {
  /** Context length per dispatch (the learner's). */
  readonly width: number
  readonly #max: number
  readonly #ttlMs: number
  readonly #entries = new Map<string, PendingEntry>()
  readonly #gone = new Map<string, string>()
  #contexts: Float64Array
  readonly #free: number[] = []
  #slots = 0
  /** No entry was dispatched before this: `expire` has nothing to do until floor + ttl. */
  #floor = Infinity

  constructor (width: number, maxPending: number, ttlMs: number) {
    this.width = width
    this.#max = maxPending
    this.#ttlMs = ttlMs
    this.#contexts = new Float64Array(width * Math.min(64, maxPending + 1))
  }

  get size (): number { return this.#entries.size }

  /** The slab holding every pending context (replaced when it grows: read it after `add`). */
  get contexts (): Float64Array { return this.#contexts }

  get (id: string): PendingEntry | undefined {
    return this.#entries.get(id)
  }

  /** Why there is no entry for `id`. */
  why (id: string): string {
    return this.#gone.get(id) ?? 'unknown dispatch id (never dispatched, complete, or expired long ago)'
  }

  /** Records a dispatch, copying `context[offset … offset + width)`. */
  add (id: string, agent: string, at: number, context: Float64Array, offset: number): PendingEntry {
    if (this.#entries.has(id)) throw new RangeError(`dispatch id ${id} is already pending`)
    const slot = this.#slot()
    const w = this.width
    const base = slot * w
    const slab = this.#contexts
    for (let i = 0; i < w; i++) slab[base + i] = context[offset + i]!
    const entry: PendingEntry = { agent, slot, at, answered: false, agreement: undefined }
    this.#entries.set(id, entry)
    if (at < this.#floor) this.#floor = at
    if (this.#gone.size > 0) this.#gone.delete(id)
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value as string
      this.#drop(oldest)
      this.#remember(oldest, `expired: more than ${this.#max} dispatches were pending`)
    }
    return entry
  }

  /** Done with a dispatch (answer and agreement both learned). */
  complete (id: string, entry: PendingEntry): void {
    if (this.#entries.delete(id)) this.#free.push(entry.slot)
  }

  /** Forgets a dispatch that must teach nothing; false if it is not pending. */
  withdraw (id: string, reason: string): boolean {
    if (!this.#entries.has(id)) return false
    this.#drop(id)
    this.#remember(id, reason)
    return true
  }

  /** Drops entries older than the time-to-live; returns how many. Entries are in dispatch order. */
  expire (now: number): number {
    if (this.#floor + this.#ttlMs > now) return 0
    let n = 0
    this.#floor = Infinity
    for (const [id, entry] of this.#entries) {
      if (entry.at + this.#ttlMs > now) { this.#floor = entry.at; break }
      this.#drop(id)
      this.#remember(id, `expired: no report within ${this.#ttlMs} ms`)
      n++
    }
    return n
  }

  toJSON (): PendingJson[] {
    const w = this.width
    return [...this.#entries].map(([id, e]) => ({
      id,
      agent: e.agent,
      context: toNumbers(this.#contexts.subarray(e.slot * w, e.slot * w + w)),
      at: e.at,
      answered: e.answered,
      ...(e.agreement !== undefined ? { agreement: e.agreement } : {})
    }))
  }

  static fromJSON (json: unknown, width: number, maxPending: number, ttlMs: number): PendingBook {
    const book = new PendingBook(width, maxPending, ttlMs)
    const items = list(json, 'pending')
    if (items.length > maxPending) throw new StateError(`pending has ${items.length} entries, more than maxPending ${maxPending}`)
    items.forEach((raw, i) => {
      const what = `pending[${i}]`
      const p = record(raw, what)
      const id = text(p.id, `${what}.id`)
      if (book.#entries.has(id)) throw new StateError(`${what}: dispatch id ${id} appears twice`)
      if (typeof p.answered !== 'boolean') throw new StateError(`${what}.answered must be a boolean`)
      const entry = book.add(id, text(p.agent, `${what}.agent`), finite(p.at, `${what}.at`), numbers(p.context, width, `${what}.context`), 0)
      entry.answered = p.answered
      entry.agreement = p.agreement === undefined ? undefined : finite(p.agreement, `${what}.agreement`)
    })
    return book
  }

  #slot (): number {
    const reused = this.#free.pop()
    if (reused !== undefined) return reused
    const slot = this.#slots++
    if ((slot + 1) * this.width > this.#contexts.length) {
      const grown = new Float64Array(Math.max(this.#contexts.length * 2, (slot + 1) * this.width))
      grown.set(this.#contexts)
      this.#contexts = grown
    }
    return slot
  }

  #drop (id: string): void {
    const entry = this.#entries.get(id)
    if (entry === undefined) return
    this.#entries.delete(id)
    this.#free.push(entry.slot)
  }

  #remember (id: string, reason: string): void {
    this.#gone.set(id, reason)
    if (this.#gone.size > this.#max) this.#gone.delete(this.#gone.keys().next().value as string)
  }
}
