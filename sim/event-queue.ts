/**
 * The simulator's pending events: a calendar queue (R. Brown, CACM 1988) over typed arrays,
 * ordered by (time, insertion sequence) so events at the same virtual time run in the order they
 * were scheduled — the rule that makes a run reproducible to the byte.
 *
 * Time is cut into buckets of one width, laid round a ring like the days of a year; each bucket
 * keeps its events in a short sorted list. Scheduling lands in one bucket; taking the earliest
 * reads the current bucket's head. Both are O(1) on average and touch a couple of cache lines,
 * where a heap of 10^6 events walks ~20 levels of cold memory. The ring is resized (and the width
 * re-estimated from the spread of pending times) when the count doubles or halves.
 *
 * An event is a time plus three integers (`kind`, `a`, `b`: e.g. message delivery, target node,
 * index of the payload in a side table the caller keeps). No object is allocated per event.
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
export class EventQueue {
  // Per slot: time, next slot in its bucket (−1: none), fields.
  #time: Float64Array
  #next: Int32Array
  #kind: Uint8Array
  #a: Int32Array
  #b: Int32Array
  /** Free slots, linked through #next. */
  #freeHead = -1
  #capacity = 0
  /** Bucket heads and tails (−1: empty); the ring has #buckets.length (a power of two) buckets. */
  #buckets: Int32Array
  #tails: Int32Array
  /** Buckets looked at by recent pops, and those pops: a poor width shows as long scans. */
  #scanned = 0
  #pops = 0
  #width = 1
  /** The day (time / width, whole) being read; its bucket is day mod the ring size. */
  #day = 0
  #size = 0
  /** Fields of the event `pop` returned last. */
  kind = 0
  a = 0
  b = 0

  constructor (capacity = 1024) {
    this.#time = new Float64Array(0)
    this.#next = new Int32Array(0)
    this.#kind = new Uint8Array(0)
    this.#a = new Int32Array(0)
    this.#b = new Int32Array(0)
    this.#reserve(Math.max(16, capacity))
    this.#buckets = new Int32Array(2).fill(-1)
    this.#tails = new Int32Array(2).fill(-1)
  }

  get size (): number { return this.#size }

  /** Time of the earliest event (Infinity when empty). */
  peekTime (): number {
    if (this.#size === 0) return Infinity
    const slot = this.#find()
    return this.#time[slot]!
  }

  push (time: number, kind: number, a: number, b: number): void {
    if (!(time >= 0) || time === Infinity) throw new RangeError(`event time must be finite and >= 0, got ${time}`)
    if (!(kind >= 0 && kind <= 255)) throw new RangeError(`event kind must be 0..255, got ${kind}`)
    if (this.#freeHead < 0) this.#reserve(this.#capacity * 2)
    const slot = this.#freeHead
    this.#freeHead = this.#next[slot]!
    this.#time[slot] = time
    this.#kind[slot] = kind
    this.#a[slot] = a
    this.#b[slot] = b
    this.#insert(slot)
    // An event before the day being read: read from its day next.
    if (Math.floor(time / this.#width) < this.#day) this.#seek(time)
    if (++this.#size > 2 * this.#buckets.length) this.#resize(this.#buckets.length * 2)
  }

  /** Removes the earliest event, returns its time, and leaves its fields in `kind`, `a`, `b`. */
  pop (): number {
    if (this.#size === 0) throw new RangeError('pop from an empty event queue')
    const slot = this.#find()
    const bucket = this.#day & (this.#buckets.length - 1)
    this.#buckets[bucket] = this.#next[slot]!
    if (this.#buckets[bucket] === -1) this.#tails[bucket] = -1
    const time = this.#time[slot]!
    this.kind = this.#kind[slot]!
    this.a = this.#a[slot]!
    this.b = this.#b[slot]!
    this.#next[slot] = this.#freeHead
    this.#freeHead = slot
    if (--this.#size < this.#buckets.length / 2 && this.#buckets.length > 2) this.#resize(this.#buckets.length / 2)
    else if (++this.#pops === 1024) {
      // A width chosen from an earlier front can fit today's badly (long scans, years skipped):
      // choose it again from the events pending now.
      if (this.#scanned > 8 * this.#pops) this.#resize(this.#buckets.length)
      this.#scanned = 0
      this.#pops = 0
    }
    return time
  }

  /** The earliest event's slot; leaves #day at its day. */
  #find (): number {
    const buckets = this.#buckets
    const times = this.#time
    const mask = buckets.length - 1
    // One year round the ring, day by day: the first head that falls on its day wins. Its day is
    // computed exactly as #insert computes it (floor(time / width)): comparing with a day's end
    // (day + 1) × width could round the other way at a border and skip an event for a year.
    for (let n = 0; n <= mask; n++) {
      const head = buckets[this.#day & mask]!
      if (head >= 0 && Math.floor(times[head]! / this.#width) <= this.#day) { this.#scanned += n + 1; return head }
      this.#day++
    }
    this.#scanned += 2 * (mask + 1)
    // Nothing this year (sparse times): jump straight to the earliest head.
    let best = -1
    for (let i = 0; i <= mask; i++) {
      const head = buckets[i]!
      if (head >= 0 && (best < 0 || times[head]! < times[best]!)) best = head
    }
    this.#seek(times[best]!)
    return best
  }

  #seek (time: number): void {
    this.#day = Math.floor(time / this.#width)
  }

  /**
   * Into its bucket's list after every event of the same or an earlier time (so ties keep
   * insertion order): at the tail when it is the latest, which is the usual case and keeps a
   * burst of equal times O(1) each.
   */
  #insert (slot: number): void {
    const time = this.#time[slot]!
    const next = this.#next
    const times = this.#time
    const bucket = Math.floor(time / this.#width) & (this.#buckets.length - 1)
    let head = this.#buckets[bucket]!
    const tail = this.#tails[bucket]!
    if (head < 0) {
      next[slot] = -1
      this.#buckets[bucket] = slot
      this.#tails[bucket] = slot
      return
    }
    if (times[tail]! <= time) {
      next[slot] = -1
      next[tail] = slot
      this.#tails[bucket] = slot
      return
    }
    if (times[head]! > time) {
      next[slot] = head
      this.#buckets[bucket] = slot
      return
    }
    while (next[head]! >= 0 && times[next[head]!]! <= time) head = next[head]!
    next[slot] = next[head]!
    next[head] = slot
  }

  /** A new ring of `n` buckets, its width from the mean gap between pending times. */
  #resize (n: number): void {
    const old = this.#buckets
    // Every pending event, in the order the old lists hold them (ties stay in insertion order).
    const pending: number[] = []
    let lo = Infinity
    let hi = -Infinity
    for (let i = 0; i < old.length; i++) {
      for (let s = old[i]!; s >= 0; s = this.#next[s]!) {
        pending.push(s)
        const t = this.#time[s]!
        if (t < lo) lo = t
        if (t > hi) hi = t
      }
    }
    // Equal times share a bucket and arrive here in their list order: a stable sort keeps it.
    pending.sort((x, y) => this.#time[x]! - this.#time[y]!)
    // The width from the spacing at the front, where events are popped (and, in a simulation,
    // densest): about three per bucket there. The spread of all times would be the tail's.
    const k = Math.min(pending.length - 1, 1024)
    const gap = k > 0 ? (this.#time[pending[k]!]! - this.#time[pending[0]!]!) / k : 0
    this.#width = gap > 0 ? 3 * gap : (hi > lo ? (hi - lo) / pending.length : 1)
    // Day numbers must stay exact integers that `day + 1` moves: keep time / width far below 2^53.
    if (pending.length > 0) this.#width = Math.max(this.#width, hi / 2 ** 40, Number.MIN_VALUE)
    this.#buckets = new Int32Array(n).fill(-1)
    this.#tails = new Int32Array(n).fill(-1)
    for (const s of pending) this.#insert(s)
    this.#seek(lo === Infinity ? 0 : lo)
  }

  #reserve (n: number): void {
    const old = this.#capacity
    const grow = <T extends Float64Array | Uint8Array | Int32Array>(from: T, make: (k: number) => T): T => {
      const to = make(n)
      to.set(from)
      return to
    }
    this.#time = grow(this.#time, k => new Float64Array(k))
    this.#next = grow(this.#next, k => new Int32Array(k))
    this.#kind = grow(this.#kind, k => new Uint8Array(k))
    this.#a = grow(this.#a, k => new Int32Array(k))
    this.#b = grow(this.#b, k => new Int32Array(k))
    for (let i = n - 1; i >= old; i--) { this.#next[i] = this.#freeHead; this.#freeHead = i }
    this.#capacity = n
  }
}
