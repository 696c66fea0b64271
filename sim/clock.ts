/**
 * Each simulated node's own clock: an offset and a drift against virtual (true) time, as
 * TigerBeetle's simulator gives every replica its own. The machines a node runs read only its
 * clock (signing times, expiry and "issued in the future" checks, deadlines, timers), so the
 * rules that depend on clocks agreeing are exercised; the metrics read true time.
 */
import { between, stream } from './rng.ts'

export interface ClockSpread {
  /** Offsets are whole milliseconds, uniform in [0, offsetMs]: what matters is how far apart two nodes' clocks are. */
  offsetMs: number
  /** Rate error, uniform in ±driftPpm parts per million (quartz: tens of ppm). */
  driftPpm: number
}

export class Clocks {
  readonly #offset: Float64Array
  readonly #rate: Float64Array

  constructor (nodes: number, spread: ClockSpread, seed: number) {
    const rng = stream(seed, 'clocks')
    this.#offset = new Float64Array(nodes)
    this.#rate = new Float64Array(nodes).fill(1)
    if (spread.offsetMs === 0 && spread.driftPpm === 0) return
    for (let i = 0; i < nodes; i++) {
      this.#offset[i] = Math.floor(between(rng, [0, spread.offsetMs + 1]))
      this.#rate[i] = 1 + between(rng, [-spread.driftPpm, spread.driftPpm]) * 1e-6
    }
  }

  /** Node `node`'s reading at virtual time `t`. */
  local (node: number, t: number): number {
    return this.#offset[node]! + t * this.#rate[node]!
  }

  /** The first virtual time at which `node` reads `at` or later (a timer it set for `at` fires then, never a rounding error early). */
  virtual (node: number, at: number): number {
    const o = this.#offset[node]!
    const r = this.#rate[node]!
    let t = (at - o) / r
    while (o + t * r < at) t += Math.max(Number.MIN_VALUE, Math.abs(t) * Number.EPSILON)
    return t
  }
}
