/** Capability records (gossip) and anti-entropy messages (streams). */
import { bytesEqual, encodeCanonical } from '../../protocols/cbor.ts'
import { decodeDirect, decodeRecord, directLimits, limits, validateTombstoneBody, validateVcvBody, ValidationError, verifyRecord } from '../../protocols/capability/index.ts'
import type { Fixtures } from '../fixtures.ts'
import { cborCases } from '../mutate.ts'
import { invariant, isOriginal, type Target } from '../target.ts'

export function recordTarget (f: Fixtures): Target {
  return {
    name: 'record',
    about: 'decodeRecord + verifyRecord: signed VCVs and tombstones',
    errors: [ValidationError],
    generate: cborCases(f.records),
    check: input => {
      const r = decodeRecord(input)
      invariant(input.byteLength <= limits.maxMessageBytes, 'accepted a record over the size limit')
      invariant(bytesEqual(encodeCanonical({ t: r.kind, body: r.bodyBytes, sig: r.sig }), input), 'accepted record does not re-encode to its bytes')
      invariant(bytesEqual(encodeCanonical(r.body), r.bodyBytes), 'accepted body does not re-encode to its bytes')
      if (r.kind === 'vcv') validateVcvBody(r.body)
      else validateTombstoneBody(r.body)
      if (verifyRecord(r, f.verifier)) invariant(isOriginal(input, f.records), 'a changed record verifies')
    }
  }
}

export function directTarget (f: Fixtures): Target {
  return {
    name: 'direct',
    about: 'decodeDirect: anti-entropy digests and batches',
    errors: [ValidationError],
    generate: cborCases(f.direct),
    check: input => {
      const m = decodeDirect(input)
      invariant(input.byteLength <= directLimits.maxMessageBytes, 'accepted a message over the size limit')
      invariant(bytesEqual(encodeCanonical(m), input), 'accepted message does not re-encode to its bytes')
      if (m.t === 'batch') {
        for (const item of m.items) { // what the table does next with each item
          try { decodeRecord(item) } catch (err) { if (!(err instanceof ValidationError)) throw err }
        }
      }
    }
  }
}
