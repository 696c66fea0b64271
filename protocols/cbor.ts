/**
 * Deterministic CBOR (RFC 8949 §4.2 core deterministic encoding) with a strict decoder.
 *
 * Signatures cover encoded bytes, so every value must have exactly one encoding: `decodeCanonical`
 * refuses input that is not byte for byte what `encodeCanonical` writes for the value it decodes
 * to. That makes "same content" and "same bytes" the same thing, which equivocation detection
 * relies on.
 */
import { encode, decode, rfc8949EncodeOptions } from 'cborg'

const strictOptions = {
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
 * is a second pass over the bytes, so it is done once per array object. Received buffers are never
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
  const value = strictDecode(bytes)
  if (canonical.has(bytes)) return value
  const verdict = canonicalEnd(bytes, 0, 0)
  if (verdict === TOO_DEEP) throw new Error(`CBOR decode error: nested more than ${MAX_NESTING} deep`)
  if (verdict !== bytes.byteLength) throw new Error('not canonical CBOR')
  canonical.add(bytes)
  return value
}

/**
 * The old check, kept as the reference the property test holds `decodeCanonical` to: decode,
 * re-encode, compare. It is correct by construction and ~4× slower (re-encoding is three
 * quarters of a decode's cost).
 */
export function decodeCanonicalByReencoding (bytes: Uint8Array): unknown {
  const value = strictDecode(bytes)
  if (nestedDeeper(value, MAX_NESTING)) throw new Error(`CBOR decode error: nested more than ${MAX_NESTING} deep`)
  if (!bytesEqual(encodeCanonical(value), bytes)) throw new Error('not canonical CBOR')
  return value
}

function strictDecode (bytes: Uint8Array): unknown {
  try {
    return decode(bytes, strictOptions)
  } catch (err) {
    // cborg recurses once per nesting level, so deep nesting (a few KiB of 0x81) overflows the
    // stack: refuse it like any other undecodable input rather than leak a RangeError.
    if (err instanceof RangeError) throw new Error('CBOR decode error: nested too deeply')
    throw err
  }
}

const TOO_DEEP = -2
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Where the item at `pos` ends if it is encoded exactly as `encodeCanonical` would encode its
 * value, else -1 (TOO_DEEP past MAX_NESTING containers). It runs on bytes cborg's strict decoder
 * has accepted (well-formed, shortest integers and lengths, no duplicate keys, tags, undefined
 * or indefinite lengths) and checks what that decoder does not: map keys in bytewise order of
 * their encodings (RFC 8949 §4.2.1), valid UTF-8, and numbers as cborg writes them, integers
 * in the safe range as integers (-0 too) and other numbers as the shortest float that holds
 * them exactly. It still bounds every read, so on any other input it fails rather than throws.
 */
function canonicalEnd (b: Uint8Array, pos: number, depth: number): number {
  if (pos >= b.byteLength) return -1
  const first = b[pos]!
  const major = first >> 5
  const info = first & 31
  let arg: number
  let at = pos + 1
  if (info < 24) arg = info
  else if (info === 24) { arg = b[at]!; at += 1; if (major !== 7 && arg < 24) return -1 }
  else if (info === 25) { arg = (b[at]! << 8) | b[at + 1]!; at += 2; if (major !== 7 && arg < 0x100) return -1 }
  else if (info === 26) { arg = ((b[at]! << 24) >>> 0) + (b[at + 1]! << 16) + (b[at + 2]! << 8) + b[at + 3]!; at += 4; if (major !== 7 && arg < 0x10000) return -1 }
  else if (info === 27) {
    const high = ((b[at]! << 24) >>> 0) + (b[at + 1]! << 16) + (b[at + 2]! << 8) + b[at + 3]!
    if (major !== 7 && (high === 0 || high > 0x1fffff)) return -1 // shorter form, or past 2^53
    arg = high * 2 ** 32 + ((b[at + 4]! << 24) >>> 0) + (b[at + 5]! << 16) + (b[at + 6]! << 8) + b[at + 7]!
    at += 8
  } else return -1
  if (at > b.byteLength) return -1
  switch (major) {
    case 0: case 1: return at
    case 2: return at + arg <= b.byteLength ? at + arg : -1
    case 3: {
      const end = at + arg
      if (end > b.byteLength) return -1
      for (let i = at; i < end; i++) {
        if (b[i]! >= 0x80) {
          try { utf8.decode(b.subarray(at, end)) } catch { return -1 }
          break
        }
      }
      return end
    }
    case 4: {
      if (depth >= MAX_NESTING) return TOO_DEEP
      for (let i = 0; i < arg; i++) {
        at = canonicalEnd(b, at, depth + 1)
        if (at < 0) return at
      }
      return at
    }
    case 5: {
      if (depth >= MAX_NESTING) return TOO_DEEP
      let keyStart = -1
      let keyEnd = -1
      for (let i = 0; i < arg; i++) {
        const end = canonicalEnd(b, at, depth + 1)
        if (end < 0) return end
        if (keyStart >= 0 && !bytesBefore(b, keyStart, keyEnd, at, end)) return -1
        keyStart = at
        keyEnd = end
        at = canonicalEnd(b, end, depth + 1)
        if (at < 0) return at
      }
      return at
    }
    case 7: {
      if (info === 20 || info === 21 || info === 22) return at // false, true, null
      if (info < 25) return -1
      const view = new DataView(b.buffer, b.byteOffset + pos + 1, at - pos - 1)
      const value = info === 25 ? view.getFloat16(0) : info === 26 ? view.getFloat32(0) : view.getFloat64(0)
      if (!Number.isFinite(value) || Number.isSafeInteger(value)) return -1
      if ((info === 25) !== fitsHalf(value)) return -1
      if (info === 27 && Math.fround(value) === value) return -1
      return at
    }
    default: return -1 // tags
  }
}

/** Whether bytes [a, aEnd) sort strictly before [c, cEnd): bytewise, a prefix first. */
function bytesBefore (b: Uint8Array, a: number, aEnd: number, c: number, cEnd: number): boolean {
  for (; a < aEnd && c < cEnd; a++, c++) if (b[a] !== b[c]) return b[a]! < b[c]!
  return aEnd - a < cEnd - c
}

const halfBits = new DataView(new ArrayBuffer(2))

/**
 * Whether cborg writes a finite, non-integral number as a half: when it is exactly one, except
 * subnormal halves, which cborg writes only for powers of two (others go to float32).
 */
function fitsHalf (value: number): boolean {
  if (Math.f16round(value) !== value) return false
  halfBits.setFloat16(0, value)
  const bits = halfBits.getUint16(0)
  const fraction = bits & 0x3ff
  return (bits & 0x7c00) !== 0 || (fraction & (fraction - 1)) === 0
}

/**
 * Deepest nesting accepted. Messages need far less (JSON answers and task inputs stop at 32), and
 * the reference check's re-encode costs depth² in cborg (its cycle check walks the stack): 5000
 * levels took 30 ms.
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
