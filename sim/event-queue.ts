/**
 * The simulator's pending events: a 4-ary min-heap over typed arrays, ordered by (time,
 * insertion sequence) so events at the same virtual time run in the order they were scheduled —
 * the rule that makes a run reproducible to the byte.
 *
 * An event is a time plus three integers (`kind`, `a`, `b`: e.g. message delivery, target node,
 * index of the payload in a side table the caller keeps). No object is allocated per event.
 * Layout, for speed at 10^6 pending events, where cache misses decide it:
 * - the heap holds times (Float64Array) and slots (Int32Array), starting three entries in, so the
 *   four children of a node share one cache line in each;
 * - four children per node halve the depth of a binary heap;
 * - an event's fields sit in its slot (kind, a, b side by side), written at `push` and read at
 *   `pop`; its sequence number is read only to break a tie of times. A freed slot is reused
 *   first, so a handler that schedules the next event finds it still in cache.
 * Capacity doubles as needed.
 *
 * @example
 * ```ts
 * const q = new EventQueue()
 * q.push(12.5, DELIVER, node, payloadSlot)
 * while (q.size > 0) {
 *   const t = q.pop()            // the earliest; its fields are in q.kind, q.a, q.b
 *   handle(t, q.kind, q.a, q.b)
 * }
 * ```
 */

/** Heap position k lives at index OFFSET + k: the four children 4k+1..4k+4 then share one cache line. */
const OFFSET = 3

export class EventQueue {
  /** Time and slot per heap position, from index OFFSET on. */
  #time: Float64Array
  #slot: Int32Array
  /** Per slot: kind, a, b (stride 3), and the insertion sequence. */
  #fields: Int32Array
  #seq: Float64Array
  /** Free slots, a stack. */
  #free: Int32Array
  #freeCount: number
  #capacity: number
  #size = 0
  #nextSeq = 0
  /** Fields of the event `pop` returned last. */
  kind = 0
  a = 0
  b = 0

  constructor (capacity = 1024) {
    this.#capacity = capacity
    this.#time = new Float64Array(capacity + OFFSET)
    this.#slot = new Int32Array(capacity + OFFSET)
    this.#fields = new Int32Array(3 * capacity)
    this.#seq = new Float64Array(capacity)
    this.#free = Int32Array.from({ length: capacity }, (_, i) => capacity - 1 - i)
    this.#freeCount = capacity
  }

  get size (): number { return this.#size }

  /** Time of the earliest event (Infinity when empty). */
  peekTime (): number {
    return this.#size === 0 ? Infinity : this.#time[OFFSET]!
  }

  push (time: number, kind: number, a: number, b: number): void {
    if (!(time >= 0) || time === Infinity) throw new RangeError(`event time must be finite and >= 0, got ${time}`)
    if (this.#freeCount === 0) this.#grow()
    const slot = this.#free[--this.#freeCount]!
    const seq = this.#nextSeq++
    this.#seq[slot] = seq
    const f = this.#fields
    f[3 * slot] = kind
    f[3 * slot + 1] = a
    f[3 * slot + 2] = b
    // Sift up: move parents down until the hole fits, then write once.
    const times = this.#time
    const slots = this.#slot
    const seqs = this.#seq
    let i = this.#size++ + OFFSET
    while (i > OFFSET) {
      const parent = ((i - OFFSET - 1) >> 2) + OFFSET
      const pt = times[parent]!
      if (time > pt || (time === pt && seq > seqs[slots[parent]!]!)) break
      times[i] = pt
      slots[i] = slots[parent]!
      i = parent
    }
    times[i] = time
    slots[i] = slot
  }

  /** Removes the earliest event, returns its time, and leaves its fields in `kind`, `a`, `b`. */
  pop (): number {
    if (this.#size === 0) throw new RangeError('pop from an empty event queue')
    const times = this.#time
    const slots = this.#slot
    const seqs = this.#seq
    const time = times[OFFSET]!
    const top = slots[OFFSET]!
    const f = this.#fields
    this.kind = f[3 * top]!
    this.a = f[3 * top + 1]!
    this.b = f[3 * top + 2]!
    this.#free[this.#freeCount++] = top
    const last = --this.#size
    if (last > 0) {
      // Sift the last event down from the root: at each level, the earliest of up to four children.
      const t = times[last + OFFSET]!
      const s = slots[last + OFFSET]!
      const end = last + OFFSET
      let i = OFFSET
      for (;;) {
        const first = 4 * (i - OFFSET) + 1 + OFFSET
        if (first >= end) break
        const stop = Math.min(first + 4, end)
        let best = first
        let bt = times[first]!
        for (let c = first + 1; c < stop; c++) {
          const x = times[c]!
          if (x < bt || (x === bt && seqs[slots[c]!]! < seqs[slots[best]!]!)) { best = c; bt = x }
        }
        if (bt > t || (bt === t && seqs[slots[best]!]! > seqs[s]!)) break
        times[i] = bt
        slots[i] = slots[best]!
        i = best
      }
      times[i] = t
      slots[i] = s
    }
    return time
  }

  clear (): void {
    this.#size = 0
    this.#freeCount = this.#capacity
    for (let i = 0; i < this.#capacity; i++) this.#free[i] = this.#capacity - 1 - i
  }

  #grow (): void {
    const old = this.#capacity
    const n = old * 2
    const times = new Float64Array(n + OFFSET)
    times.set(this.#time)
    this.#time = times
    const slots = new Int32Array(n + OFFSET)
    slots.set(this.#slot)
    this.#slot = slots
    const fields = new Int32Array(3 * n)
    fields.set(this.#fields)
    this.#fields = fields
    const seq = new Float64Array(n)
    seq.set(this.#seq)
    this.#seq = seq
    // Every slot was taken: the new ones are free.
    this.#free = new Int32Array(n)
    for (let i = 0; i < n - old; i++) this.#free[i] = n - 1 - i
    this.#freeCount = n - old
    this.#capacity = n
  }
}
