/**
 * Runs synchronous jobs in slices of the event loop: jobs run back to back for at most `sliceMs`,
 * then the rest wait for a fresh iteration (setImmediate), so I/O — the API, beacons, pings — is
 * served between slices however many jobs a flood queues. The queue is bounded, in all and per
 * source, in units a job's `weight` gives (default 1; a gossip message weighs one per 16 KiB, so a
 * bundle of records counts like the single records it replaces): past `maxQueued`, or
 * `maxPerSource` units waiting for one source, a job is refused at once
 * (its caller decides what refusal means; a gossip validator ignores the message, which is then
 * neither forwarded nor penalised). One flooding neighbour thus fills its own share, not the queue.
 *
 * Why: libp2p hands a stream's buffered data to gossipsub in microtasks, and gossipsub starts a
 * validation per message without waiting; a burst of thousands of valid records (decode and
 * Ed25519 verify, ~0.2 ms each) otherwise runs as one block of seconds that no request can enter.
 */
export class TimeSlicer {
  readonly #sliceMs: number
  readonly #maxQueued: number
  readonly #maxPerSource: number
  readonly #perSource = new Map<string, number>()
  readonly #clock: () => number
  #queue: Array<() => void> = []
  /** Units waiting, all sources together. */
  #units = 0
  /** Index of the next job in #queue (shift() would make draining a long queue quadratic). */
  #head = 0
  #scheduled = false
  #sliceEnds = -Infinity

  constructor (options: { sliceMs?: number, maxQueued?: number, maxPerSource?: number, clock?: () => number } = {}) {
    this.#sliceMs = options.sliceMs ?? 10
    this.#maxQueued = options.maxQueued ?? 10_000
    this.#maxPerSource = options.maxPerSource ?? 512
    this.#clock = options.clock ?? (() => performance.now())
  }

  get queued (): number { return this.#queue.length - this.#head }

  /**
   * `job`'s result, run now if the current slice has time and nothing waits, else in a later
   * slice; `refused(cause)`'s result if `source`'s share of the queue, or the queue, is full.
   */
  async run<T> (source: string, job: () => T, refused: (cause: 'source' | 'queue') => T, weight = 1): Promise<T> {
    if (this.queued === 0 && this.#clock() < this.#sliceEnds) return job()
    const mine = this.#perSource.get(source) ?? 0
    if (mine + weight > this.#maxPerSource) return refused('source')
    if (this.#units + weight > this.#maxQueued) return refused('queue')
    this.#perSource.set(source, mine + weight)
    this.#units += weight
    return await new Promise<T>((resolve, reject) => {
      this.#queue.push(() => {
        this.#units -= weight
        const left = (this.#perSource.get(source) ?? weight) - weight
        if (left > 0) this.#perSource.set(source, left)
        else this.#perSource.delete(source)
        try { resolve(job()) } catch (err) { reject(err) }
      })
      this.#schedule()
    })
  }

  #schedule (): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      this.#sliceEnds = this.#clock() + this.#sliceMs
      while (this.queued > 0 && this.#clock() < this.#sliceEnds) this.#queue[this.#head++]!()
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head)
        this.#head = 0
      }
      if (this.queued > 0) this.#schedule()
    })
  }
}
