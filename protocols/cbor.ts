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

/** Decodes `bytes`; throws unless they are exactly the canonical encoding of the result. */
export function decodeCanonical (bytes: Uint8Array): unknown {
  const value: unknown = decode(bytes, strictDecode)
  if (canonical.has(bytes)) return value
  if (!bytesEqual(encodeCanonical(value), bytes)) throw new Error('not canonical CBOR')
  canonical.add(bytes)
  return value
}

export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}
