// Hashing is pure and deterministic, so protocols may use node:crypto's SHA-256 directly.
import { createHash } from 'node:crypto'

export function sha256 (data: Uint8Array | string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest())
}

/** JSON with object keys sorted at every level, so equal schemas hash equally on every host. */
export function canonicalJson (value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v
    const sorted: Record<string, unknown> = {}
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k]
    return sorted
  })
}
