/** A seeded random source for the fuzzer: every case is reproducible from (seed, target, case index). */
import { mulberry32 } from '../protocols/random.ts'

export class Rng {
  readonly #next: () => number
  constructor (seed: number) { this.#next = mulberry32(seed) }
  /** Uniform in [0, 1). */
  float (): number { return this.#next() }
  /** Integer in [0, n). */
  int (n: number): number { return Math.floor(this.#next() * n) }
  chance (p: number): boolean { return this.#next() < p }
  pick<T> (items: readonly T[]): T { return items[this.int(items.length)]! }
  bytes (n: number): Uint8Array { return Uint8Array.from({ length: n }, () => this.int(256)) }
  /** Small sizes often, large ones sometimes: most bugs need neither 0 nor 10^6. */
  size (max: number): number { return this.chance(0.7) ? this.int(Math.min(max, 16) + 1) : this.int(max + 1) }
}

/** One generator per case, so a reproducer needs only the seed, the target and the case index. */
export function caseRng (seed: number, target: string, index: number): Rng {
  let h = seed >>> 0
  for (let i = 0; i < target.length; i++) h = Math.imul(h ^ target.charCodeAt(i), 0x01000193) >>> 0
  return new Rng((h ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0)
}
