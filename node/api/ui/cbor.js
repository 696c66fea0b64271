// The CBOR the dashboard needs to check certificates by itself: a decoder for the signed objects
// (maps, lists, byte and text strings, integers, floats, true/false/null; no tags, no indefinite
// lengths) and the deterministic encoder the value id is hashed over (RFC 8949 §4.2: shortest
// heads, map keys sorted by their encoded bytes, floats in the shortest exact width, as the peer's
// cborg encodes them). Runs in the browser and in Node alike: no DOM.

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder('utf-8', { fatal: true })

/** Decodes one CBOR item that must fill `bytes` exactly. */
export function decode (bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let at = 0
  const need = n => { if (at + n > bytes.byteLength) throw new Error('CBOR ends early') }
  const argument = minor => {
    if (minor < 24) return minor
    const width = { 24: 1, 25: 2, 26: 4, 27: 8 }[minor]
    if (width === undefined) throw new Error(`CBOR minor ${minor} is not supported`)
    need(width)
    let n
    if (width === 1) n = view.getUint8(at)
    else if (width === 2) n = view.getUint16(at)
    else if (width === 4) n = view.getUint32(at)
    else n = view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4)
    at += width
    return n
  }
  const item = depth => {
    if (depth > 64) throw new Error('CBOR nests too deeply')
    need(1)
    const first = bytes[at++]
    const major = first >> 5
    const minor = first & 31
    if (major === 7) {
      if (minor === 20) return false
      if (minor === 21) return true
      if (minor === 22) return null
      if (minor === 25) { need(2); const v = halfToNumber(view.getUint16(at)); at += 2; return v }
      if (minor === 26) { need(4); const v = view.getFloat32(at); at += 4; return v }
      if (minor === 27) { need(8); const v = view.getFloat64(at); at += 8; return v }
      throw new Error(`CBOR simple value ${minor} is not supported`)
    }
    const n = argument(minor)
    switch (major) {
      case 0: return n
      case 1: return -1 - n
      case 2: { need(n); const b = bytes.slice(at, at + n); at += n; return b }
      case 3: { need(n); const s = fromUtf8.decode(bytes.subarray(at, at + n)); at += n; return s }
      case 4: {
        if (n > bytes.byteLength) throw new Error('CBOR list is longer than its bytes')
        const list = []
        for (let i = 0; i < n; i++) list.push(item(depth + 1))
        return list
      }
      case 5: {
        if (n > bytes.byteLength) throw new Error('CBOR map is longer than its bytes')
        // No prototype: a key named __proto__ is just a key.
        const map = Object.create(null)
        for (let i = 0; i < n; i++) {
          const key = item(depth + 1)
          if (typeof key !== 'string') throw new Error('CBOR map keys must be text')
          if (Object.hasOwn(map, key)) throw new Error(`CBOR map repeats key ${JSON.stringify(key)}`)
          map[key] = item(depth + 1)
        }
        return map
      }
      default: throw new Error('CBOR tags are not supported')
    }
  }
  const value = item(0)
  if (at !== bytes.byteLength) throw new Error('bytes left after the CBOR item')
  return value
}

function halfToNumber (h) {
  const sign = h & 0x8000 ? -1 : 1
  const exponent = (h >> 10) & 0x1f
  const fraction = h & 0x3ff
  if (exponent === 0) return sign * fraction * 2 ** -24
  if (exponent === 31) return fraction === 0 ? sign * Infinity : NaN
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15)
}

/** Deterministic CBOR of a JSON-like value (null, booleans, numbers, strings, bytes, lists, maps). */
export function encode (value) {
  const out = []
  write(value, out)
  return Uint8Array.from(out)
}

function head (major, n, out) {
  const m = major << 5
  if (n < 24) out.push(m | n)
  else if (n < 0x100) out.push(m | 24, n)
  else if (n < 0x10000) out.push(m | 25, n >> 8, n & 0xff)
  else if (n < 0x100000000) out.push(m | 26, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
  else {
    const hi = Math.floor(n / 2 ** 32)
    const lo = n >>> 0
    out.push(m | 27, hi >>> 24, (hi >> 16) & 0xff, (hi >> 8) & 0xff, hi & 0xff, lo >>> 24, (lo >> 16) & 0xff, (lo >> 8) & 0xff, lo & 0xff)
  }
}

function write (v, out) {
  if (v === null) return void out.push(0xf6)
  if (v === true) return void out.push(0xf5)
  if (v === false) return void out.push(0xf4)
  if (typeof v === 'number') return writeNumber(v, out)
  if (typeof v === 'string') {
    const b = utf8.encode(v)
    head(3, b.byteLength, out)
    for (const x of b) out.push(x)
    return
  }
  if (v instanceof Uint8Array) {
    head(2, v.byteLength, out)
    for (const x of v) out.push(x)
    return
  }
  if (Array.isArray(v)) {
    head(4, v.length, out)
    for (const x of v) write(x, out)
    return
  }
  if (typeof v === 'object') {
    const entries = Object.keys(v).map(k => ({ key: encode(k), value: v[k] })).sort((a, b) => compareBytes(a.key, b.key))
    head(5, entries.length, out)
    for (const e of entries) {
      for (const x of e.key) out.push(x)
      write(e.value, out)
    }
    return
  }
  throw new Error(`cannot encode a ${typeof v} as CBOR`)
}

function compareBytes (a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i]
  return a.length - b.length
}

const scratch = new DataView(new ArrayBuffer(8))

function writeNumber (x, out) {
  // Safe integers (and -0) are integers on the wire; everything else a float.
  if (Number.isSafeInteger(x)) return x >= 0 ? head(0, x, out) : head(1, -1 - x, out)
  const half = halfBits(x)
  if (half !== undefined) return void out.push(0xf9, half >> 8, half & 0xff)
  if (Math.fround(x) === x) {
    scratch.setFloat32(0, x)
    out.push(0xfa)
    for (let i = 0; i < 4; i++) out.push(scratch.getUint8(i))
    return
  }
  scratch.setFloat64(0, x)
  out.push(0xfb)
  for (let i = 0; i < 8; i++) out.push(scratch.getUint8(i))
}

/**
 * The 16-bit pattern of `x` when the peer's encoder writes it as a half float, else undefined:
 * normal halves whose value is exact, and of the subnormal halves only powers of two.
 */
function halfBits (x) {
  if (!Number.isFinite(x) || Math.fround(x) !== x) return undefined
  scratch.setFloat32(0, x)
  const bits = scratch.getUint32(0)
  const biased = (bits >>> 23) & 0xff
  const exponent = biased - 127
  const mantissa = bits & 0x7fffff
  const sign = x < 0 ? 0x8000 : 0
  // Zero is an integer; float32 subnormals are far below any half.
  if (biased === 0) return undefined
  if (exponent >= -14 && exponent <= 15 && (mantissa & 0x1fff) === 0) return sign | ((exponent + 15) << 10) | (mantissa >> 13)
  if (exponent >= -24 && exponent < -14 && mantissa === 0) return sign | (1 << (24 + exponent))
  return undefined
}
