/** What a fuzz target is, and the checks every target shares. */
import { bytesEqual } from '../protocols/cbor.ts'
import type { Rng } from './rng.ts'

export type ErrorClass = abstract new (...args: never[]) => Error

/** An invariant broke (not an exception the decoder threw). */
export class Finding extends Error {
  override name = 'Finding'
}

export interface Target {
  name: string
  about: string
  /** The documented validation errors; any other exception is a finding. */
  errors: readonly ErrorClass[]
  /** For decoders whose documented error is a plain Error: which ones are theirs. */
  accepts?: (err: Error) => boolean
  /** One input, from the case's own random source. */
  generate: (rng: Rng) => Uint8Array
  /** Runs the decoder on `input` and checks its invariants; throws a Finding when one breaks. */
  check: (input: Uint8Array) => void
  /**
   * A case slower than this is a finding (default: the runner's, 50 ms, a budget per message off
   * the wire). Files a command reads once (tasks, agents and network files) get more.
   */
  slowMs?: number
}

export function invariant (ok: boolean, message: string): void {
  if (!ok) throw new Finding(message)
}

/** A record or message that verifies must be one of the signed originals, byte for byte. */
export function isOriginal (wire: Uint8Array, originals: readonly Uint8Array[]): boolean {
  return originals.some(o => bytesEqual(o, wire))
}
