/**
 * `decodeCanonical` checks canonical form in one pass over the bytes; the reference decodes,
 * re-encodes and compares. Both must give the same verdict and the same value on every input:
 * canonical encodings, their mutations, sloppy encodings and every float bit pattern that matters.
 */
import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeCanonical, decodeCanonicalByReencoding, encodeCanonical } from '../../protocols/cbor.ts'
import { writeCbor } from '../../fuzz/cbor-writer.ts'
import { Rng } from '../../fuzz/rng.ts'

type Verdict = { ok: true, value: unknown } | { ok: false }

function verdict (decoder: (b: Uint8Array) => unknown, bytes: Uint8Array): Verdict {
  try {
    return { ok: true, value: decoder(bytes.slice()) }
  } catch (err) {
    if (!(err instanceof Error)) throw new Error(`threw a non-Error: ${String(err)}`)
    return { ok: false }
  }
}

/** Both decoders on `bytes`: same verdict, and the same value (-0 and 0 told apart). Plain checks: it runs ~200k times. */
function agree (bytes: Uint8Array): Verdict {
  const fast = verdict(decodeCanonical, bytes)
  const reference = verdict(decodeCanonicalByReencoding, bytes)
  const hex = (): string => Buffer.from(bytes).toString('hex')
  if (fast.ok !== reference.ok) throw new Error(`verdicts differ on ${hex()}: one-pass ${fast.ok ? 'accepts' : 'refuses'}, reference ${reference.ok ? 'accepts' : 'refuses'}`)
  if (fast.ok && reference.ok && !isDeepStrictEqual(fast.value, reference.value)) throw new Error(`values differ on ${hex()}`)
  return fast
}

const value: fc.Arbitrary<unknown> = fc.letrec(tie => ({
  any: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null), fc.boolean(), fc.integer(), fc.maxSafeInteger(), fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.float({ noNaN: true, noDefaultInfinity: true }).map(Number), fc.string({ unit: 'binary', maxLength: 12 }), fc.uint8Array({ maxLength: 12 }),
    fc.array(tie('any'), { maxLength: 4 }), fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), tie('any'), { maxKeys: 4 })
  )
})).any

const bits = (width: 2 | 4 | 8, n: bigint): Uint8Array => {
  const out = new Uint8Array(width + 1)
  out[0] = width === 2 ? 0xf9 : width === 4 ? 0xfa : 0xfb
  for (let i = width; i >= 1; i--) { out[i] = Number(n & 0xffn); n >>= 8n }
  return out
}

describe('decodeCanonical', () => {
  it('accepts every canonical encoding and decodes the value the reference decodes', () => {
    fc.assert(fc.property(value, v => {
      const bytes = encodeCanonical(v)
      expect(agree(bytes).ok).toBe(true)
    }), { seed: 14, numRuns: 3000 })
  })

  it('gives the reference verdict on mutated encodings (bytes changed, inserted, removed)', () => {
    const edit = fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }), op: fc.constantFrom('set', 'insert', 'remove', 'swap') })
    fc.assert(fc.property(value, fc.array(edit, { minLength: 1, maxLength: 3 }), (v, edits) => {
      const bytes = [...encodeCanonical(v)]
      for (const { at, byte, op } of edits) {
        const i = at % Math.max(1, bytes.length)
        if (op === 'set') bytes[i] = byte
        else if (op === 'insert') bytes.splice(i, 0, byte)
        else if (op === 'remove') bytes.splice(i, 1)
        else if (i + 1 < bytes.length) [bytes[i], bytes[i + 1]] = [bytes[i + 1]!, bytes[i]!]
      }
      agree(Uint8Array.from(bytes))
    }), { seed: 15, numRuns: 5000 })
  })

  it('gives the reference verdict on sloppy encodings (long heads, unsorted keys, float64 everywhere)', () => {
    const rng = new Rng(16)
    fc.assert(fc.property(value, v => { agree(writeCbor(v, rng, 0.3)) }), { seed: 16, numRuns: 3000 })
  })

  it('gives the reference verdict on every half-precision float and on floats of every width near them', () => {
    let accepted = 0
    for (let h = 0n; h < 0x10000n; h++) {
      const half = bits(2, h)
      if (agree(half).ok) accepted++
      const value = new DataView(half.buffer).getFloat16(1) // the same value, widened
      const f32 = new DataView(new ArrayBuffer(4))
      f32.setFloat32(0, value)
      agree(bits(4, BigInt(f32.getUint32(0))))
      const f64 = new DataView(new ArrayBuffer(8))
      f64.setFloat64(0, value)
      agree(bits(8, f64.getBigUint64(0)))
    }
    // Refused: infinities and NaNs (2048), every half of 1024 or more (12,288, all integral), the
    // smaller integral ones, and subnormals other than powers of two (cborg writes those as float32).
    expect(accepted).toBeGreaterThan(40_000)
    expect(accepted).toBeLessThan(65_536 - 2048 - 12_288)
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: 0xffffffffn }), n => { agree(bits(4, n)) }), { seed: 17, numRuns: 5000 })
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: 0xffffffffffffffffn }), n => { agree(bits(8, n)) }), { seed: 18, numRuns: 5000 })
    fc.assert(fc.property(fc.float({ noNaN: true }), x => {
      const f64 = new DataView(new ArrayBuffer(8))
      f64.setFloat64(0, x)
      agree(bits(8, f64.getBigUint64(0)))
    }), { seed: 19, numRuns: 5000 })
  })

  it('refuses what the reference refuses for text and keys: bad UTF-8, unsorted and repeated keys', () => {
    for (const hex of ['61ff', '62c0af', '63eda080', 'a2616201616101', 'a261610161610a', 'a262616101616202', 'a1f600']) {
      expect(agree(Uint8Array.from(Buffer.from(hex, 'hex'))).ok, hex).toBe(false)
    }
    expect(agree(Uint8Array.from(Buffer.from('a2616101626161f6', 'hex'))).ok).toBe(true)
  })
})
