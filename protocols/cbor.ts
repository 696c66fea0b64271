/**
 * Deterministic CBOR (RFC 8949 §4.2 core deterministic encoding) with a strict decoder.
 *
 * Signatures cover encoded bytes, so every value must have exactly one encoding: `decodeCanonical`
 * re-encodes what it decoded and refuses input whose bytes differ. That makes "same content" and
 * "same bytes" the same thing, which equivocation detection relies on.
 */
import { encode, decode, rfc8949EncodeOptions } from 'cborg'

const strictDecode = {
  strict: true,
  rejectDuplicateMapKeys: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: false,
  useMaps: false
} as const

export function encodeCanonical (value: unknown): Uint8Array {
  return encode(value, rfc8949EncodeOptions)
}

/**
 * Byte arrays already found canonical. One message object is often decoded again (a gossiped
 * record by each validation step, one simulated message by every node it reaches); the check
 * costs a full re-encode, so it is done once per array object. Received buffers are never
 * written to after they arrive, which is what makes the identity a safe key.
 */
const canonical = new WeakSet<Uint8Array>()

let perArray = false

/**
 * Turns the caches of `oncePerArray` on or off (off by default). The simulator turns them on: one
 * broadcast array reaches every simulated node. A node leaves them off: its received arrays are
 * new each time, and a cached result keeps its array, and the whole buffer it is a view of,
 * alive. Measured with `npm run bench -- adversary --attack replayed-gossip` (RSS growth of the
 * worst honest peer in 30 s): 45–63 MB with no cache (4 runs), 113–118 MB remembering only the
 * last 16 arrays per cache (2), 101–135 MB with weak entries (6). Off costs a node CPU: gossip
 * 0.32–0.34 of gossipsub's defaults per delivery (3 runs) against 0.29–0.30 with weak entries.
 */
export function cachePerArray (on: boolean): void { perArray = on }
export function cachingPerArray (): boolean { return perArray }

/**
 * `compute`, run once per array object while the array lives (a failure is not remembered) when
 * `cachePerArray` is on, else every time. The result is shared, so it must be treated as
 * immutable; received buffers are never written to, which makes the identity a safe key.
 */
export function oncePerArray<T> (compute: (bytes: Uint8Array) => T): (bytes: Uint8Array) => T {
  const known = new WeakMap<Uint8Array, T>()
  return bytes => {
    if (!perArray) return compute(bytes)
    if (known.has(bytes)) return known.get(bytes)!
    const value = compute(bytes)
    known.set(bytes, value)
    return value
  }
}

/** Decodes `bytes`; throws unless they are exactly the canonical encoding of the result. */
export function decodeCanonical (bytes: Uint8Array): unknown {
  let value: unknown
  let again: Uint8Array | undefined
  try {
    value = decode(bytes, strictDecode)
    if (canonical.has(bytes)) return value
    if (nestedDeeper(value, MAX_NESTING)) throw new Error(`CBOR decode error: nested more than ${MAX_NESTING} deep`)
    again = encodeCanonical(value)
  } catch (err) {
    // cborg recurses once per nesting level, so deep nesting (a few KiB of 0x81) overflows the
    // stack: refuse it like any other undecodable input rather than leak a RangeError.
    if (err instanceof RangeError) throw new Error('CBOR decode error: nested too deeply')
    throw err
  }
  if (!bytesEqual(again, bytes)) throw new Error('not canonical CBOR')
  canonical.add(bytes)
  return value
}

/**
 * Deepest nesting accepted. Messages need far less (JSON answers and task inputs stop at 32), and
 * re-encoding costs depth² in cborg (its cycle check walks the stack): 5000 levels took 30 ms.
 */
const MAX_NESTING = 256

/** Whether containers nest more than `limit` deep; iterative, so depth cannot overflow the stack. */
function nestedDeeper (value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    if (typeof v !== 'object' || v === null || v instanceof Uint8Array) continue
    if (depth >= limit) return true
    for (const x of Array.isArray(v) ? v : Object.values(v)) stack.push([x, depth + 1])
  }
  return false
}

export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}
