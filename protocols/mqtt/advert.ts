/**
 * What an MQTT agent publishes, retained, on `agents/<client>/<agent>/advert`: the fields of a VCV
 * that the agent decides (the bridge adds the agent id, version, schema hash, times and its
 * signature). JSON, at most 48 KiB, every key known:
 *
 * ```json
 * { "description": "reads the temperature of room 4", "skills": ["temperature", "sensor"],
 *   "inputSchema": { "type": "object" }, "outputSchema": { "type": "object" },
 *   "costPerCall": 0.1, "latencyMs": 50, "capacity": 2, "policy": ["deterministic"] }
 * ```
 *
 * `publicKey` (base64 of a raw 32-byte Ed25519 key) says the agent signs its own replies: every
 * reply must then carry its signature, and answers it gives for trusted subtasks carry that
 * signature into certificates (protocols/consensus/endorsement.ts).
 *
 * Parsed strictly with reasons; the VCV's own rules (lengths, token shapes, schema sizes) are then
 * the capability table's `check`, so an advert is held to exactly what a signed record must meet.
 * An empty payload is a withdrawal (MQTT's way to clear a retained message).
 */
import { fromString } from 'uint8arrays'
import { limits } from '../capability/schema.ts'
import type { LocalAgent } from '../capability/table.ts'
import { meshAgentName } from './topics.ts'

export const MAX_ADVERT_BYTES = 48 * 1024
/** Nesting a schema may have (JSON Schemas in practice stay under ten). */
export const MAX_SCHEMA_DEPTH = 32

const KEYS = ['description', 'skills', 'inputSchema', 'outputSchema', 'costPerCall', 'latencyMs', 'capacity', 'policy', 'publicKey'] as const

export class AdvertError extends Error {
  override name = 'AdvertError'
}

/** `publicKey`: the agent's raw Ed25519 public key, when it signs its own replies (see protocols/consensus/endorsement.ts). */
export type Advert = { kind: 'withdrawn' } | { kind: 'agent', agent: LocalAgent, publicKey?: Uint8Array }

/** The advert of `client`'s agent `agent` (the names come from the topic, already checked). */
export function parseAdvert (payload: Uint8Array, client: string, agent: string): Advert {
  let name: string
  try {
    name = meshAgentName(client, agent)
  } catch (err) {
    throw new AdvertError((err as Error).message)
  }
  if (payload.byteLength === 0) return { kind: 'withdrawn' }
  if (payload.byteLength > MAX_ADVERT_BYTES) throw new AdvertError(`an advert is at most ${MAX_ADVERT_BYTES / 1024} KiB, this one is ${payload.byteLength} bytes`)
  let doc: unknown
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload))
  } catch (err) {
    throw new AdvertError(`an advert must be UTF-8 JSON: ${(err as Error).message.slice(0, 120)}`)
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new AdvertError('an advert must be a JSON object with description, skills, inputSchema, outputSchema, …')
  const o = doc as Record<string, unknown>
  for (const key of Object.keys(o)) {
    if (!(KEYS as readonly string[]).includes(key)) throw new AdvertError(`unknown field "${key.slice(0, 40)}" — allowed: ${KEYS.join(', ')}`)
  }
  if (typeof o.description !== 'string' || o.description.trim() === '') throw new AdvertError('"description" must be a non-empty string: what the agent does, in words a requester would use')
  const list = (v: unknown, what: string, max: number): string[] => {
    if (v === undefined) return []
    if (!Array.isArray(v) || v.length > max || !v.every(x => typeof x === 'string')) throw new AdvertError(`"${what}" must be a list of at most ${max} strings`)
    return v
  }
  const schema = (v: unknown, what: string): Record<string, unknown> => {
    if (v === undefined) return {}
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new AdvertError(`"${what}" must be a JSON Schema object`)
    // Found by the fuzzer: thousands of nested brackets fit in 48 KiB, and deep values overflow
    // the stack of whatever walks them next (canonical JSON, deep comparison).
    if (tooDeep(v, MAX_SCHEMA_DEPTH)) throw new AdvertError(`"${what}" is nested more than ${MAX_SCHEMA_DEPTH} levels deep`)
    return v as Record<string, unknown>
  }
  const number = (v: unknown, what: string, fallback: number, min: number, max: number, integer = false): number => {
    if (v === undefined) return fallback
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      throw new AdvertError(`"${what}" must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`)
    }
    return v
  }
  let publicKey: Uint8Array | undefined
  if (o.publicKey !== undefined) {
    let key: Uint8Array | undefined
    try {
      // Strict base64: a last character with stray low bits is refused (the fuzzer found it threw).
      if (typeof o.publicKey === 'string' && /^[A-Za-z0-9+/_-]{43}=?$/.test(o.publicKey)) key = fromString(o.publicKey.replace(/=$/, '').replace(/-/g, '+').replace(/_/g, '/'), 'base64')
    } catch {}
    if (key?.byteLength !== 32) throw new AdvertError('"publicKey" must be the agent\'s raw 32-byte Ed25519 public key in base64')
    publicKey = new Uint8Array(key)
  }
  return {
    kind: 'agent',
    ...(publicKey === undefined ? {} : { publicKey }),
    agent: {
      name,
      description: o.description,
      skills: list(o.skills, 'skills', limits.maxSkills),
      inputSchema: schema(o.inputSchema, 'inputSchema'),
      outputSchema: schema(o.outputSchema, 'outputSchema'),
      costPerCall: number(o.costPerCall, 'costPerCall', 1, 0, 1e9),
      latencyMs: number(o.latencyMs, 'latencyMs', 1000, 0, 24 * 3600 * 1000),
      capacity: number(o.capacity, 'capacity', 1, 1, 10_000, true),
      policy: list(o.policy, 'policy', limits.maxPolicyFlags)
    }
  }
}

/** Whether `value` nests deeper than `max` (stops descending at the limit, so never overflows). */
function tooDeep (value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false
  if (max === 0) return true
  for (const v of Object.values(value)) if (tooDeep(v, max - 1)) return true
  return false
}
