// Hashing is pure and deterministic, so protocols may use node:crypto's SHA-256 directly.
// `hash` is the one-shot form. With hex output it costs 0.4–0.5 µs for a 300-byte message against
// 2.0–2.5 µs for createHash().update().digest() and a JavaScript base16 pass (measured on Node 24).
import { hash } from 'node:crypto'

export function sha256 (data: Uint8Array | string): Uint8Array {
  return new Uint8Array(hash('sha256', data, 'buffer'))
}

/** Lower-case hex SHA-256. */
export function sha256Hex (data: Uint8Array | string): string {
  return hash('sha256', data, 'hex')
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
