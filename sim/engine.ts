/**
 * The discrete-event engine: a virtual clock and the pending events. An event is a time, a kind,
 * an integer and optionally a payload held in a side table (slots reused), so the queue itself
 * stays typed arrays. Handlers run in (time, scheduling order), which makes a run a pure function
 * of the scenario and its seed.
 *
 * @example
 * ```ts
 * const engine = new Engine()
 * const PING = engine.kind((node, payload) => console.log(engine.now, node, payload))
 * engine.at(5, PING, 3, 'hello')
 * engine.run(1000)                 // runs until no event is left or the clock passes 1000 ms
 * ```
 */
import { EventQueue } from './event-queue.ts'

export type Handler = (a: number, payload: unknown) => void

export class Engine {
  /** Virtual time, ms. */
  now = 0
  /** Events run so far. */
  events = 0
  readonly #queue = new EventQueue(4096)
  readonly #handlers: Handler[] = []
  readonly #payloads: unknown[] = []
  readonly #free: number[] = []
  #halted = false

  /** Registers a kind of event and its handler. */
  kind (handler: Handler): number {
    this.#handlers.push(handler)
    return this.#handlers.length - 1
  }

  get pending (): number { return this.#queue.size }

  /** Ends the current `run` after this event (the run's goal is met). */
  halt (): void { this.#halted = true }

  /** Schedules an event at `time` (never before now). */
  at (time: number, kind: number, a: number, payload?: unknown): void {
    let slot = -1
    if (payload !== undefined) {
      slot = this.#free.pop() ?? this.#payloads.length
      this.#payloads[slot] = payload
    }
    this.#queue.push(Math.max(time, this.now), kind, a, slot)
  }

  /** Runs events until none is left, the next one lies beyond `until` or a handler calls `halt`; `every` is called every 4096 events. */
  run (until = Infinity, every?: () => void): void {
    const q = this.#queue
    this.#halted = false
    while (q.size > 0 && q.peekTime() <= until && !this.#halted) {
      this.now = q.pop()
      const { kind, a, b } = q
      let payload: unknown
      if (b >= 0) {
        payload = this.#payloads[b]
        this.#payloads[b] = undefined
        this.#free.push(b)
      }
      this.events++
      this.#handlers[kind]!(a, payload)
      if (every !== undefined && (this.events & 4095) === 0) every()
    }
  }
}
