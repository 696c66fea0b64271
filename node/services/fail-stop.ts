/**
 * A broken invariant in a protocol machine (`protocols/assert.ts`) is a bug in this code, and the
 * machine's state can no longer be trusted: a consensus member that goes on could sign what it
 * must not. The peer stops, loudly, as TigerBeetle's replicas do (fail-stop): its stores are
 * durable and a restart recovers them. This is for the places where a library would otherwise
 * swallow the exception (a stream handler, a gossip validator): there the error is rethrown
 * outside the library's reach, where nothing catches it.
 */
import { InvariantError } from '../../protocols/assert.ts'

/** Runs `f`; a broken invariant it throws ends the process (after `f`'s caller has unwound). */
export function failStopOnBug<T> (f: () => T): T {
  try {
    return f()
  } catch (err) {
    if (err instanceof InvariantError) process.nextTick(() => { throw err })
    throw err
  }
}
