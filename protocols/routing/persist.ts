/**
 * Reading saved bandit state back: Float64Arrays are saved as number[] (JSON prints doubles in
 * their shortest round-trip form, so save → load is exact), and every field is checked on the
 * way in, with the path of whatever is wrong.
 */

export class StateError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'StateError'
  }
}

export function toNumbers (a: Float64Array): number[] {
  return Array.from(a)
}

export function record (v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new StateError(`${what} must be an object`)
  return v as Record<string, unknown>
}

export function finite (v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new StateError(`${what} must be a finite number`)
  return v
}

export function count (v: unknown, what: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new StateError(`${what} must be a non-negative integer`)
  return v as number
}

export function text (v: unknown, what: string): string {
  if (typeof v !== 'string') throw new StateError(`${what} must be a string`)
  return v
}

export function list (v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new StateError(`${what} must be an array`)
  return v
}

/** A number[] of exactly `length` finite numbers, as a Float64Array. */
export function numbers (v: unknown, length: number, what: string): Float64Array {
  const a = list(v, what)
  if (a.length !== length) throw new StateError(`${what} has ${a.length} numbers, expected ${length}`)
  const out = new Float64Array(length)
  for (let i = 0; i < length; i++) out[i] = finite(a[i], `${what}[${i}]`)
  return out
}
