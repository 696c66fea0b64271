/** Building and breaking signed records the way an attacker would, with the project's own codecs. */
import { createAgent } from '../../../node/agents/registry.ts'
import { toLocalAgent } from '../../../node/peer.ts'
import { decodeCanonical, encodeCanonical } from '../../../protocols/cbor.ts'
import { decodeRecord, schemaHash, signVcv, WIRE_VERSION, type SignedVcv, type VcvBody } from '../../../protocols/capability/index.ts'
import { canonicalJson } from '../../../protocols/hash.ts'
import type { Signer } from '../../../protocols/identity.ts'

const arithmetic = toLocalAgent(createAgent({ kind: 'arithmetic' }))

/** A VCV body that copies the demo calculator under another name: the Sybil's favourite disguise. */
export function calculatorBody (host: string, name: string, version: number, description: string, ttlMs: number): VcvBody {
  const inputSchema = canonicalJson(arithmetic.inputSchema)
  const outputSchema = canonicalJson(arithmetic.outputSchema)
  const now = Date.now()
  return {
    v: WIRE_VERSION,
    agent: `${host}/${name}`,
    version,
    description,
    skills: arithmetic.skills,
    inputSchema,
    outputSchema,
    schemaHash: schemaHash(inputSchema, outputSchema),
    embedding: null,
    cost: arithmetic.costPerCall,
    latencyMs: arithmetic.latencyMs,
    capacity: arithmetic.capacity,
    policy: arithmetic.policy,
    issuedAt: now,
    expiresAt: now + ttlMs
  }
}

export const calculatorDescription = arithmetic.description

export function signCalculator (signer: Signer, name: string, version: number, description: string, ttlMs = 10 * 60_000): SignedVcv {
  return signVcv(calculatorBody(signer.peerId, name, version, description, ttlMs), signer)
}

/**
 * Someone else's VCV with a newer version and the old signature: canonical, well-formed, and
 * only the (costly) signature check can refuse it.
 */
export function forgeNewerVersion (wire: Uint8Array, bump: number): Uint8Array | undefined {
  let record
  try { record = decodeRecord(wire) } catch { return undefined }
  if (record.kind !== 'vcv') return undefined
  const now = Date.now()
  const body = encodeCanonical({ ...record.body, version: record.body.version + bump, issuedAt: now, expiresAt: now + 60_000 })
  return encodeCanonical({ t: 'vcv', body, sig: record.sig })
}

/** The same bytes with one bit of one 64-byte signature flipped (`n` picks which), still canonical CBOR. */
export function corruptSignature (bytes: Uint8Array, n: number): Uint8Array | undefined {
  const sigs: Array<{ holder: Uint8Array }> = []
  const walk = (v: unknown, depth: number): unknown => {
    if (v instanceof Uint8Array) {
      if (v.byteLength === 64) { const copy = Uint8Array.from(v); sigs.push({ holder: copy }); return copy }
      if (depth < 4 && v.byteLength > 64) {
        // Signed parts are often nested encodings: look inside, and re-encode what changed.
        try {
          const inner = decodeCanonical(v)
          if (typeof inner === 'object' && inner !== null) {
            const before = sigs.length
            const walked = walk(inner, depth + 1)
            return sigs.length > before ? new Nested(walked) : v
          }
        } catch {}
      }
      return v
    }
    if (Array.isArray(v)) return v.map(x => walk(x, depth))
    if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, walk(x, depth)]))
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, depth)]))
    return v
  }
  let tree: unknown
  try { tree = walk(decodeCanonical(bytes), 0) } catch { return undefined }
  if (sigs.length === 0) return undefined
  const target = sigs[n % sigs.length]!.holder
  const bit = Math.floor(n / sigs.length) % 512
  target[bit >> 3] = (target[bit >> 3] ?? 0) ^ (1 << (bit & 7))
  return encodeCanonical(unwrap(tree))
}

/** Marks a nested encoding to be encoded again once its signature is flipped. */
class Nested {
  readonly value: unknown
  constructor (value: unknown) { this.value = value }
}

function unwrap (v: unknown): unknown {
  if (v instanceof Nested) return encodeCanonical(unwrap(v.value))
  if (v instanceof Uint8Array) return v
  if (Array.isArray(v)) return v.map(unwrap)
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, unwrap(x)]))
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]))
  return v
}
