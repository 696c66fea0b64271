/**
 * Mutations. Structure-aware ones work on the decoded tree of a valid encoding (signed bodies
 * inside byte strings included) and write it back, canonically or sloppily; byte-level ones flip,
 * cut, extend and splice the encoded bytes.
 */
import { decode } from 'cborg'
import { decodeCanonical } from '../protocols/cbor.ts'
import { Nested, Raw, writeCbor } from './cbor-writer.ts'
import type { Rng } from './rng.ts'

type Tree = unknown
type Slot = { get: () => Tree, set: (v: Tree) => void, remove: () => void }

/** The seed's tree: byte strings that are themselves canonical CBOR containers become `Nested`. */
export function toTree (bytes: Uint8Array): Tree {
  return nest(decode(bytes))
}

function nest (v: Tree): Tree {
  if (v instanceof Uint8Array) {
    try {
      const inner = decodeCanonical(v.slice())
      if (typeof inner === 'object' && inner !== null) return new Nested(nest(inner))
    } catch {}
    return v
  }
  if (Array.isArray(v)) return v.map(nest)
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, nest(x)]))
  return v
}

function clone (v: Tree): Tree {
  if (v instanceof Nested) return new Nested(clone(v.value))
  if (v instanceof Uint8Array) return v.slice()
  if (v instanceof Raw) return v
  if (Array.isArray(v)) return v.map(clone)
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)]))
  return v
}

function slots (root: { v: Tree }): Slot[] {
  const out: Slot[] = []
  const visit = (get: () => Tree, set: (v: Tree) => void, remove: () => void): void => {
    out.push({ get, set, remove })
    const v = get()
    const inner = v instanceof Nested ? v.value : v
    const holder = v instanceof Nested ? v : undefined
    if (holder !== undefined && (typeof inner !== 'object' || inner === null)) return
    if (Array.isArray(inner)) {
      inner.forEach((_, i) => visit(() => inner[i], x => { inner[i] = x }, () => { inner.splice(i, 1) }))
    } else if (typeof inner === 'object' && inner !== null && !(inner instanceof Uint8Array) && !(inner instanceof Raw)) {
      const o = inner as Record<string, Tree>
      for (const k of Object.keys(o)) visit(() => o[k], x => { put(o, k, x) }, () => { delete o[k] })
    }
  }
  visit(() => root.v, x => { root.v = x }, () => { root.v = null })
  return out
}

/** An own property even for "__proto__" (an assignment would set the prototype instead). */
function put (o: Record<string, Tree>, key: string, value: Tree): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })
}

const h = (...b: number[]): Uint8Array => Uint8Array.from(b)
const bomb = (open: number[], depth: number): Uint8Array => {
  const out = new Uint8Array(open.length * depth + 1)
  for (let i = 0; i < depth; i++) out.set(open, i * open.length)
  return out // ends in 0x00: the innermost value is the integer 0
}

/** Values and hand-made encodings a decoder must survive. */
export function nasty (rng: Rng): Tree {
  switch (rng.int(34)) {
    case 0: return null
    case 1: return rng.chance(0.5)
    case 2: return 0
    case 3: return -1
    case 4: return 1.5
    case 5: return Number.MAX_SAFE_INTEGER
    case 6: return -Number.MAX_SAFE_INTEGER
    case 7: return 1e308
    case 8: return ''
    case 9: return 'x'.repeat(rng.pick([65, 257, 4001, 16385, 70_000]))
    case 10: return rng.pick(['__proto__', 'constructor', '\u0000', '\ud800', 'Ä'.normalize('NFD'), '12D3KooW', '../..', 'a'.repeat(64)])
    case 11: return new Uint8Array(rng.pick([0, 1, 8, 31, 32, 33, 64, 65]))
    case 12: return []
    case 13: return {}
    case 14: return Array.from({ length: rng.pick([33, 65, 257, 1025, 5000]) }, () => rng.pick([0, 'a', new Uint8Array(8)]))
    case 15: return { ['__proto__']: { polluted: true } }
    case 16: return new Raw(h(0xf9, 0x7e, 0x00), 'NaN')
    case 17: return new Raw(h(0xf9, 0x7c, 0x00), 'Infinity')
    case 18: return new Raw(h(0xf9, 0xfc, 0x00), '-Infinity')
    case 19: return new Raw(h(0xf7), 'undefined')
    case 20: return new Raw(h(rng.pick([0xf0, 0xf8]), 0x20), 'simple value')
    case 21: return new Raw(h(0xc1, 0x1a, 0x5f, 0x00, 0x00, 0x00), 'tag 1')
    case 22: return new Raw(h(0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0), 'bignum tag')
    case 23: return new Raw(h(0xd8, 0x2a, 0x41, 0x00), 'tag 42')
    case 24: return new Raw(h(0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 'uint64 max')
    case 25: return new Raw(h(0x3b, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00), '-2^53-1')
    case 26: return new Raw(h(rng.pick([0x5b, 0x7b, 0x9b, 0xbb]), 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00), 'length 2^32')
    case 27: return new Raw(h(rng.pick([0x5a, 0x7a, 0x9a, 0xba]), 0x7f, 0xff, 0xff, 0xff), 'length 2^31')
    case 28: return new Raw(bomb([0x81], rng.pick([33, 200, 5000, 100_000])), 'array depth bomb')
    case 29: return new Raw(bomb([0xa1, 0x61, 0x61], rng.pick([33, 200, 5000, 50_000])), 'map depth bomb')
    case 30: return new Raw(h(0xff), 'stray break')
    case 31: return new Raw(h(rng.pick([0x1c, 0x3e, 0x5d, 0xfc])), 'reserved')
    case 32: return new Raw(h(0x5f, 0x41, 0x00, 0xff), 'indefinite bytes')
    default: return new Raw(h(0xf9, 0x80, 0x00), '-0 half float')
  }
}

/** One structural change to a copy of `tree`: delete, add, retype, tweak or swap a field. */
export function mutateTree (tree: Tree, rng: Rng): Tree {
  const root = { v: clone(tree) }
  const all = slots(root)
  const rounds = rng.chance(0.8) ? 1 : 1 + rng.int(4)
  for (let r = 0; r < rounds; r++) {
    const slot = rng.pick(all)
    const v = slot.get()
    switch (rng.int(6)) {
      case 0: slot.remove(); break
      case 1: slot.set(nasty(rng)); break
      case 2: slot.set(tweak(v, rng)); break
      case 3: slot.set(clone(rng.pick(all).get())); break
      case 4: { // add an element or an unknown key
        const inner = v instanceof Nested ? v.value : v
        if (Array.isArray(inner)) inner.push(rng.chance(0.5) && inner.length > 0 ? clone(rng.pick(inner)) : nasty(rng))
        else if (typeof inner === 'object' && inner !== null && !(inner instanceof Uint8Array) && !(inner instanceof Raw)) {
          put(inner as Record<string, Tree>, rng.pick(['x', 'extra', '__proto__', 'constructor', 't', 'v', '']), nasty(rng))
        } else slot.set(nasty(rng))
        break
      }
      default: slot.set(tweak(v, rng))
    }
  }
  return root.v
}

function tweak (v: Tree, rng: Rng): Tree {
  if (typeof v === 'number') return rng.pick([v + 1, v - 1, -v, v * 2, v / 3, v + 0.5, v + 1e-9, 0, Number.MAX_SAFE_INTEGER + 2])
  if (typeof v === 'string') {
    switch (rng.int(6)) {
      case 0: return v.slice(0, rng.int(v.length + 1))
      case 1: return v + rng.pick(['a', ' ', '/', '\n', '\u0301', 'é', '0'])
      case 2: return v.toUpperCase()
      case 3: return v.length > 0 ? v.slice(0, -1) + String.fromCharCode(v.charCodeAt(v.length - 1) ^ (1 << rng.int(7))) : 'a'
      case 4: return v.repeat(rng.pick([2, 10, 100]))
      default: return v.split('').reverse().join('')
    }
  }
  if (v instanceof Uint8Array) {
    const b = v.slice()
    if (b.byteLength > 0 && rng.chance(0.6)) { b[rng.int(b.byteLength)]! ^= 1 << rng.int(8); return b }
    return rng.chance(0.5) ? b.subarray(0, rng.int(b.byteLength + 1)) : Uint8Array.from([...b, ...rng.bytes(1 + rng.int(8))])
  }
  if (typeof v === 'boolean') return !v
  if (v instanceof Nested) return rng.chance(0.5) ? writeCbor(v.value).subarray(1) : new Nested(mutateTree(v.value, rng))
  return nasty(rng)
}

/** Byte-level damage: bit flips, interesting bytes, truncation, extension, insertion, splicing. */
export function mutateBytes (input: Uint8Array, rng: Rng, others: readonly Uint8Array[] = []): Uint8Array {
  let b: Uint8Array = Uint8Array.from(input)
  const n = 1 + (rng.chance(0.7) ? 0 : rng.int(8))
  for (let i = 0; i < n; i++) {
    const at = rng.int(b.byteLength + 1)
    switch (rng.int(8)) {
      case 0: if (b.byteLength > 0) b[Math.min(at, b.byteLength - 1)]! ^= 1 << rng.int(8); break
      case 1: if (b.byteLength > 0) b[Math.min(at, b.byteLength - 1)] = rng.pick([0x00, 0xff, 0x7f, 0x80, 0x18, 0x1b, 0x1f, 0x5f, 0x9f, 0xbf, 0xf7, 0xf9, 0xfb, 0xc0]); break
      case 2: b = b.slice(0, at); break
      case 3: b = concat(b, rng.bytes(rng.size(64))); break
      case 4: b = concat(b.slice(0, at), rng.bytes(1 + rng.int(8)), b.slice(at)); break
      case 5: b = concat(b.slice(0, at), b.slice(Math.min(b.byteLength, at + 1 + rng.int(16)))); break
      case 6: { const len = rng.int(32); b = concat(b.slice(0, at), b.slice(at, at + len), b.slice(at)); break }
      default: {
        const other = others.length > 0 ? rng.pick(others) : b
        const from = rng.int(other.byteLength + 1)
        b = concat(b.slice(0, at), other.slice(from, from + rng.int(64)), b.slice(at))
      }
    }
  }
  return b
}

export function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.byteLength }
  return out
}

/** A case for a CBOR target: an untouched seed, a structural mutation, byte damage, or noise. */
/** A generator of `cborCase`s over `seeds`, their trees parsed once. */
export function cborCases (seeds: readonly Uint8Array[]): (rng: Rng) => Uint8Array {
  const trees = seeds.map(toTree)
  return rng => cborCase(seeds, trees, rng)
}

export function cborCase (seeds: readonly Uint8Array[], trees: readonly Tree[], rng: Rng): Uint8Array {
  const i = rng.int(seeds.length)
  const r = rng.float()
  if (r < 0.03) return seeds[i]!.slice()
  if (r < 0.55) return writeCbor(mutateTree(trees[i], rng), rng, rng.chance(0.2) ? 0.1 : 0)
  if (r < 0.65) return mutateBytes(writeCbor(mutateTree(trees[i], rng)), rng, seeds)
  if (r < 0.9) return mutateBytes(seeds[i]!, rng, seeds)
  if (r < 0.95) return writeCbor(trees[i], rng, 0.3) // valid content, non-canonical encoding
  return rng.chance(0.5) ? rng.bytes(rng.size(512)) : concat(Uint8Array.of(rng.pick([0xa1, 0xa2, 0xa3, 0xa5, 0x82, 0x98])), rng.bytes(rng.size(256)))
}
