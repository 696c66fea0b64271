/**
 * A CBOR writer that can be sloppy on purpose. With `sloppiness` 0 it writes the canonical
 * encoding (the same bytes as protocols/cbor.ts); above 0 it sometimes picks encodings a strict
 * decoder must refuse: over-long heads, indefinite lengths, unsorted or duplicate map keys,
 * float64 for everything. `Raw` splices hand-made bytes (tags, NaN, undefined, huge lengths).
 */
import { encodeCanonical } from '../protocols/cbor.ts'
import type { Rng } from './rng.ts'

/** Bytes written verbatim where a value would go. */
export class Raw {
  readonly bytes: Uint8Array
  readonly label: string
  constructor (bytes: Uint8Array, label: string) { this.bytes = bytes; this.label = label }
}

/** A byte string that holds CBOR (a signed body): mutated as a tree, written back as bytes. */
export class Nested {
  value: unknown
  constructor (value: unknown) { this.value = value }
}

const utf8 = new TextEncoder()

export function writeCbor (value: unknown, rng?: Rng, sloppiness = 0): Uint8Array {
  const out: number[] = []
  write(value, out, rng, sloppiness)
  return Uint8Array.from(out)
}

function sloppy (rng: Rng | undefined, p: number): boolean {
  return rng !== undefined && p > 0 && rng.chance(p)
}

function head (major: number, n: number, out: number[], wide: boolean): void {
  const m = major << 5
  if (n < 24 && !wide) out.push(m | n)
  else if (n < 0x100 && !wide) out.push(m | 24, n)
  else if (n < 0x10000 && !wide) out.push(m | 25, n >> 8, n & 0xff)
  else if (n < 0x100000000) out.push(m | 26, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
  else {
    const hi = Math.floor(n / 0x100000000)
    out.push(m | 27, (hi >>> 24) & 0xff, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
  }
}

function write (value: unknown, out: number[], rng: Rng | undefined, p: number): void {
  if (value instanceof Raw) { pushAll(out, value.bytes); return }
  if (value === undefined) { out.push(0xf7); return } // a field removed from under a stale slot
  if (value instanceof Nested) { write(writeCbor(value.value, rng, p), out, rng, p); return }
  if (typeof value === 'number' && sloppy(rng, p)) {
    const b = new DataView(new ArrayBuffer(8))
    b.setFloat64(0, value)
    out.push(0xfb, ...new Uint8Array(b.buffer))
    return
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) { out.push(...encodeCanonical(value)); return }
  if (typeof value === 'string' || value instanceof Uint8Array) {
    const major = typeof value === 'string' ? 3 : 2
    const bytes = typeof value === 'string' ? utf8.encode(value) : value
    if (sloppy(rng, p) && bytes.byteLength > 0) { // indefinite length, two chunks
      const cut = rng!.int(bytes.byteLength)
      out.push((major << 5) | 31)
      head(major, cut, out, false); pushAll(out, bytes.subarray(0, cut))
      head(major, bytes.byteLength - cut, out, false); pushAll(out, bytes.subarray(cut))
      out.push(0xff)
      return
    }
    head(major, bytes.byteLength, out, sloppy(rng, p))
    pushAll(out, bytes)
    return
  }
  if (Array.isArray(value)) {
    const indefinite = sloppy(rng, p)
    if (indefinite) out.push(0x9f)
    else head(4, value.length, out, sloppy(rng, p))
    for (const v of value) write(v, out, rng, p)
    if (indefinite) out.push(0xff)
    return
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).map(([k, v]) => ({ key: writeCbor(k), v }))
    entries.sort((a, b) => compareBytes(a.key, b.key))
    if (sloppy(rng, p) && entries.length > 1) entries.reverse()
    if (sloppy(rng, p) && entries.length > 0) entries.push(entries[rng!.int(entries.length)]!) // duplicate key
    const indefinite = sloppy(rng, p)
    if (indefinite) out.push(0xbf)
    else head(5, entries.length, out, sloppy(rng, p))
    for (const e of entries) { pushAll(out, e.key); write(e.v, out, rng, p) }
    if (indefinite) out.push(0xff)
    return
  }
  throw new Error(`cannot write ${typeof value}`)
}

function pushAll (out: number[], bytes: Uint8Array): void {
  for (const b of bytes) out.push(b)
}

function compareBytes (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}
