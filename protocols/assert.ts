/**
 * Invariants inside the protocol machines: a condition that holds unless this code is wrong
 * (never one that hostile input can break: input is refused with a reason instead). A broken
 * invariant throws InvariantError, so every unit test, property test and simulated run checks
 * them for free, and the simulator stops with its seed (`sim/failure.ts`).
 */
export class InvariantError extends Error {
  constructor (message: string) {
    super(`invariant broken: ${message}`)
    this.name = 'InvariantError'
  }
}

/** Throws InvariantError with `what` (a string, or a function for a costly message) unless `holds`. */
export function invariant (holds: boolean, what: string | (() => string)): asserts holds {
  if (!holds) throw new InvariantError(typeof what === 'string' ? what : what())
}
