/**
 * What the capability gossip topic carries: one signed record, or a bundle of them.
 *
 * A bundle is `{ t: 'bundle', items: [record wire, …] }` (canonical CBOR): the records a peer
 * publishes in one turn, such as a host's agents at start and at each refresh, or the records it
 * learned off-gossip. Each record keeps its own host signature, so the bundle needs none; what it
 * saves is the per-message cost of gossip (noise, yamux, protobuf, a message id, an IDONTWANT to
 * each mesh peer), which measured larger than a signature check per record.
 */
import { encodeCanonical } from '../cbor.ts'
import { limits, ValidationError } from './schema.ts'
import { decodeMap } from './wire.ts'

export const bundleLimits = {
  /** Records in one bundle. */
  maxItems: 64,
  /** One bundle on the wire: bundles are cut below this, and a larger one is refused. */
  maxBytes: 256 * 1024
} as const

/** Packs records (wire bytes, each ≤ limits.maxMessageBytes) into as few bundles as the limits allow, in order. */
export function packBundles (records: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = []
  let items: Uint8Array[] = []
  let bytes = 0
  for (const record of records) {
    // 16 bytes of slack per item for the CBOR array and byte-string headers.
    if (items.length > 0 && (items.length >= bundleLimits.maxItems || bytes + record.byteLength + 16 > bundleLimits.maxBytes - 64)) {
      out.push(encodeCanonical({ t: 'bundle', items }))
      items = []
      bytes = 0
    }
    items.push(record)
    bytes += record.byteLength + 16
  }
  if (items.length > 0) out.push(encodeCanonical({ t: 'bundle', items }))
  return out
}

/**
 * The records of a gossip message: a bundle's items, or the message itself when it is a single
 * record (which `decodeRecord` then checks). Throws a ValidationError for anything else.
 */
export function gossipRecords (data: Uint8Array): Uint8Array[] {
  if (data.byteLength > bundleLimits.maxBytes) throw new ValidationError(`gossip message is ${data.byteLength} bytes, limit ${bundleLimits.maxBytes}`)
  const m = decodeMap(data, 'gossip message')
  if (m.t !== 'bundle') {
    if (data.byteLength > limits.maxMessageBytes) throw new ValidationError(`record is ${data.byteLength} bytes, limit ${limits.maxMessageBytes}`)
    return [data]
  }
  if (Object.keys(m).length !== 2 || !Array.isArray(m.items)) throw new ValidationError('bundle must be { t, items }')
  if (m.items.length === 0 || m.items.length > bundleLimits.maxItems) throw new ValidationError(`bundle must hold 1-${bundleLimits.maxItems} records`)
  if (!m.items.every(i => i instanceof Uint8Array)) throw new ValidationError('bundle items must be bytes')
  return m.items as Uint8Array[]
}
