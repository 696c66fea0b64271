/** The strict canonical CBOR decoder every wire decoder starts with. */
import { decodeCanonical, encodeCanonical, bytesEqual } from '../../protocols/cbor.ts'
import type { Fixtures } from '../fixtures.ts'
import { cborCases } from '../mutate.ts'
import { invariant, type Target } from '../target.ts'

export function cborTarget (f: Fixtures): Target {
  const seeds = [...f.records, ...f.direct, ...f.answers, ...f.committees, ...f.messages, ...f.certificates, ...f.equivocations, ...f.rpc]
  return {
    name: 'cbor',
    about: 'decodeCanonical: strict, canonical-only CBOR',
    errors: [],
    // Its documented refusals are plain Errors: cborg's "CBOR decode error: …" or "not canonical CBOR".
    accepts: err => err.constructor === Error && /^(CBOR decode error|not canonical CBOR)/.test(err.message),
    generate: cborCases(seeds),
    check: input => {
      const value = decodeCanonical(input)
      invariant(bytesEqual(encodeCanonical(value), input), 'accepted bytes are not the canonical encoding')
      plain(value)
    }
  }
}

/** Only the value kinds the strict options allow: no undefined, bigint, Map, NaN or Infinity. */
function plain (v: unknown): void {
  if (v === null || typeof v === 'boolean' || typeof v === 'string' || v instanceof Uint8Array) return
  if (typeof v === 'number') return invariant(Number.isFinite(v), `decoded ${v}`)
  if (Array.isArray(v)) { v.forEach(plain); return }
  invariant(typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype, `decoded a ${typeof v} (${Object.prototype.toString.call(v)})`)
  Object.values(v as object).forEach(plain)
}
