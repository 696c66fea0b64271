/**
 * Anti-entropy messages, sent peer to peer (not gossiped):
 * - `digest`: for every live record, 8 bytes of SHA-256(agent id) and its version;
 * - `batch`: signed records the receiver's digest showed it lacks.
 */
import { encodeCanonical } from '../cbor.ts'
import { ValidationError } from './schema.ts'
import { decodeMap } from './wire.ts'

export const directLimits = {
  maxMessageBytes: 4 * 1024 * 1024,
  maxDigestEntries: 200_000,
  maxBatchItems: 1024,
  /** Batches are cut near this size so one message never nears the hard limit. */
  targetBatchBytes: 512 * 1024
} as const

export type DigestEntry = [key: Uint8Array, version: number]
export type DirectMessage =
  | { t: 'digest', entries: DigestEntry[] }
  | { t: 'batch', items: Uint8Array[] }

export function encodeDirect (message: DirectMessage): Uint8Array {
  return encodeCanonical(message)
}

export function decodeDirect (bytes: Uint8Array): DirectMessage {
  if (bytes.byteLength > directLimits.maxMessageBytes) {
    throw new ValidationError(`direct message is ${bytes.byteLength} bytes, limit ${directLimits.maxMessageBytes}`)
  }
  const m = decodeMap(bytes, 'direct message')
  if (m.t === 'digest' && Object.keys(m).length === 2 && Array.isArray(m.entries)) {
    if (m.entries.length > directLimits.maxDigestEntries) throw new ValidationError('digest has too many entries')
    for (const e of m.entries) {
      if (!Array.isArray(e) || e.length !== 2 || !(e[0] instanceof Uint8Array) || e[0].byteLength !== 8 ||
        !Number.isSafeInteger(e[1]) || e[1] < 1) {
        throw new ValidationError('digest entries must be [8 bytes, version]')
      }
    }
    return m as DirectMessage
  }
  if (m.t === 'batch' && Object.keys(m).length === 2 && Array.isArray(m.items)) {
    if (m.items.length > directLimits.maxBatchItems) throw new ValidationError('batch has too many items')
    if (!m.items.every(i => i instanceof Uint8Array)) throw new ValidationError('batch items must be bytes')
    return m as DirectMessage
  }
  throw new ValidationError('direct message must be a digest or a batch')
}
