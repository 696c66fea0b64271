/**
 * The simulator's pending events: a binary min-heap over parallel typed arrays, ordered by
 * (time, insertion sequence) so events at the same virtual time run in the order they were
 * scheduled — the rule that makes a run reproducible to the byte.
 *
 * An event is a time plus three integers (`kind`, `a`, `b`: e.g. message delivery, target node,
 * index of the payload in a side table the caller keeps). No object is allocated per event, so a
 * million pending events are a few tens of megabytes and the garbage collector never sees them.
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
export class EventQueue {
  #time: Float64Array
  #seq: Float64Array
  #kind: Uint8Array
  #a: Int32Array
  #b: Int32Array
  #size = 0
  #nextSeq = 0
  /** Fields of the event `pop` returned last. */
  kind = 0
  a = 0
  b = 0

  constructor (capacity = 1024) {
    this.#time = new Float64Array(capacity)
    this.#seq = new Float64Array(capacity)
    this.#kind = new Uint8Array(capacity)
    this.#a = new Int32Array(capacity)
    this.#b = new Int32Array(capacity)
  }

  get size (): number { return this.#size }

  /** Time of the earliest event (Infinity when empty). */
  peekTime (): number {
    return this.#size === 0 ? Infinity : this.#time[0]!
  }

  push (time: number, kind: number, a: number, b: number): void {
    if (!(time >= 0) || time === Infinity) throw new RangeError(`event time must be finite and >= 0, got ${time}`)
    if (this.#size === this.#time.length) this.#grow()
    const seq = this.#nextSeq++
    // Sift up: move parents down until the slot fits, then write once.
    const times = this.#time
    const seqs = this.#seq
    let i = this.#size++
    while (i > 0) {
      const parent = (i - 1) >> 1
      const pt = times[parent]!
      if (time > pt || (time === pt && seq > seqs[parent]!)) break
      this.#move(parent, i)
      i = parent
    }
    this.#write(i, time, seq, kind, a, b)
  }

  /** Removes the earliest event, returns its time, and leaves its fields in `kind`, `a`, `b`. */
  pop (): number {
    if (this.#size === 0) throw new RangeError('pop from an empty event queue')
    const time = this.#time[0]!
    this.kind = this.#kind[0]!
    this.a = this.#a[0]!
    this.b = this.#b[0]!
    const last = --this.#size
    if (last > 0) {
      // Sift the last event down from the root.
      const t = this.#time[last]!
      const s = this.#seq[last]!
      const k = this.#kind[last]!
      const a = this.#a[last]!
      const b = this.#b[last]!
      const times = this.#time
      const seqs = this.#seq
      let i = 0
      for (;;) {
        let child = 2 * i + 1
        if (child >= last) break
        const right = child + 1
        if (right < last && (times[right]! < times[child]! || (times[right] === times[child] && seqs[right]! < seqs[child]!))) child = right
        const ct = times[child]!
        if (ct > t || (ct === t && seqs[child]! > s)) break
        this.#move(child, i)
        i = child
      }
      this.#write(i, t, s, k, a, b)
    }
    return time
  }

  clear (): void {
    this.#size = 0
  }

  #move (from: number, to: number): void {
    this.#time[to] = this.#time[from]!
    this.#seq[to] = this.#seq[from]!
    this.#kind[to] = this.#kind[from]!
    this.#a[to] = this.#a[from]!
    this.#b[to] = this.#b[from]!
  }

  #write (i: number, time: number, seq: number, kind: number, a: number, b: number): void {
    this.#time[i] = time
    this.#seq[i] = seq
    this.#kind[i] = kind
    this.#a[i] = a
    this.#b[i] = b
  }

  #grow (): void {
    const n = this.#time.length * 2
    const grow = <T extends Float64Array | Uint8Array | Int32Array>(old: T, make: (n: number) => T): T => {
      const next = make(n)
      next.set(old)
      return next
    }
    this.#time = grow(this.#time, k => new Float64Array(k))
    this.#seq = grow(this.#seq, k => new Float64Array(k))
    this.#kind = grow(this.#kind, k => new Uint8Array(k))
    this.#a = grow(this.#a, k => new Int32Array(k))
    this.#b = grow(this.#b, k => new Int32Array(k))
  }
}
