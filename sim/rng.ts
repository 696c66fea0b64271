/**
 * One seeded PRNG per source of randomness. Each stream is derived from the run's seed and the
 * stream's name, so adding draws to one source (say, agent latency) never shifts another (say,
 * the task stream): two runs that differ only in policy see the same tasks and the same faults.
 */
import { mulberry32 } from '../protocols/random.ts'

export type Rng = () => number

/** FNV-1a over the name, mixed with the seed. */
function streamSeed (seed: number, name: string): number {
  let h = 0x811c9dc5 ^ Math.imul(seed >>> 0, 0x9e3779b1)
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  return h >>> 0
}

export function stream (seed: number, name: string): Rng {
  return mulberry32(streamSeed(seed, name))
}

/** A standard normal draw (Box–Muller). */
export function gaussian (rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng())
}

/** Uniform in [lo, hi). */
export function between (rng: Rng, [lo, hi]: readonly [number, number]): number {
  return lo + (hi - lo) * rng()
}

/** An integer in [0, n). */
export function pick (rng: Rng, n: number): number {
  return Math.min(n - 1, Math.floor(rng() * n))
}

/** `count` distinct indices of [0, n), in draw order (partial Fisher–Yates over a copy). */
export function sample (rng: Rng, n: number, count: number): number[] {
  const k = Math.min(n, count)
  const a = Int32Array.from({ length: n }, (_, i) => i)
  for (let i = 0; i < k; i++) {
    const j = i + pick(rng, n - i)
    const t = a[i]!
    a[i] = a[j]!
    a[j] = t
  }
  return [...a.subarray(0, k)]
}

/** A stable hash of two integers in [0, 1): per-link properties that never change in a run. */
export function hash01 (seed: number, a: number, b: number): number {
  let h = Math.imul(seed ^ 0x27d4eb2d, 0x9e3779b1) ^ Math.imul(a + 1, 0x85ebca6b) ^ Math.imul(b + 1, 0xc2b2ae35)
  h ^= h >>> 15
  h = Math.imul(h, 0x2c1b3c6d)
  h ^= h >>> 12
  h = Math.imul(h, 0x297a2d39)
  h ^= h >>> 15
  return (h >>> 0) / 4294967296
}
