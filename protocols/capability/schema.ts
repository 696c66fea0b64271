/**
 * The Versioned Capability Vector: what a host says about one of its agents, signed by the host.
 * Field-by-field validation with a reason for every refusal; limits bound what a peer must store.
 */
import { isEd25519PeerId } from '../identity.ts'

export const WIRE_VERSION = 1

export const limits = {
  /** One signed VCV or tombstone on the wire. */
  maxMessageBytes: 64 * 1024,
  maxNameLength: 64,
  maxDescriptionLength: 4000,
  maxSkills: 32,
  maxSkillLength: 48,
  maxPolicyFlags: 16,
  maxPolicyLength: 32,
  maxSchemaBytes: 16 * 1024,
  maxModelLength: 128,
  maxEmbeddingDims: 4096,
  /** Longest lifetime a VCV or tombstone may claim (24 h). */
  maxTtlMs: 24 * 60 * 60 * 1000,
  maxVersion: Number.MAX_SAFE_INTEGER
} as const

export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/
const TOKEN_PATTERN = /^[\p{L}\p{N}][\p{L}\p{N}._:/+-]*$/u

export interface Embedding {
  /** Embedding model id, e.g. `hash-ngram-256@1`; vectors from different models are never compared. */
  model: string
  /** Float32 little-endian components. */
  vector: Uint8Array
}

/** The signed fields of a VCV. `agent` is `<host peer id>/<name>`. */
export interface VcvBody {
  v: number
  agent: string
  version: number
  description: string
  skills: string[]
  /** JSON Schema texts, and SHA-256 over `inputSchema + "\n" + outputSchema` so peers can match I/O by hash. */
  inputSchema: string
  outputSchema: string
  schemaHash: Uint8Array
  embedding: Embedding | null
  /** Price per call in mesh credits, latency estimate in ms, concurrent calls. */
  cost: number
  latencyMs: number
  capacity: number
  policy: string[]
  /** Unix ms. */
  issuedAt: number
  expiresAt: number
}

/** A signed withdrawal: every version of `agent` up to `version` is gone. */
export interface TombstoneBody {
  v: number
  agent: string
  version: number
  issuedAt: number
  expiresAt: number
}

export class ValidationError extends Error {
  override name = 'ValidationError'
}

export function splitAgentId (agent: string): { host: string, name: string } | undefined {
  const slash = agent.indexOf('/')
  if (slash < 0) return undefined
  return { host: agent.slice(0, slash), name: agent.slice(slash + 1) }
}

const VCV_KEYS = ['v', 'agent', 'version', 'description', 'skills', 'inputSchema', 'outputSchema', 'schemaHash',
  'embedding', 'cost', 'latencyMs', 'capacity', 'policy', 'issuedAt', 'expiresAt']
const TOMBSTONE_KEYS = ['v', 'agent', 'version', 'issuedAt', 'expiresAt']

/** Throws a ValidationError naming the first field that is wrong. */
export function validateVcvBody (value: unknown): VcvBody {
  const o = record(value, 'vcv', VCV_KEYS)
  common(o)
  str(o.description, 'description', limits.maxDescriptionLength)
  tokens(o.skills, 'skills', limits.maxSkills, limits.maxSkillLength)
  tokens(o.policy, 'policy', limits.maxPolicyFlags, limits.maxPolicyLength)
  jsonText(o.inputSchema, 'inputSchema')
  jsonText(o.outputSchema, 'outputSchema')
  if (!(o.schemaHash instanceof Uint8Array) || o.schemaHash.byteLength !== 32) fail('schemaHash must be 32 bytes')
  if (o.embedding !== null) {
    const e = record(o.embedding, 'embedding', ['model', 'vector'])
    str(e.model, 'embedding.model', limits.maxModelLength, 1)
    const vector = e.vector
    if (!(vector instanceof Uint8Array) || vector.byteLength === 0 || vector.byteLength % 4 !== 0 ||
      vector.byteLength / 4 > limits.maxEmbeddingDims) {
      fail(`embedding.vector must be 1..${limits.maxEmbeddingDims} float32 values`)
    }
    const floats = new DataView(vector.buffer, vector.byteOffset, vector.byteLength)
    for (let i = 0; i < vector.byteLength; i += 4) {
      if (!Number.isFinite(floats.getFloat32(i, true))) fail('embedding.vector has a non-finite value')
    }
  }
  num(o.cost, 'cost')
  num(o.latencyMs, 'latencyMs')
  int(o.capacity, 'capacity', 1)
  return o as unknown as VcvBody
}

export function validateTombstoneBody (value: unknown): TombstoneBody {
  const o = record(value, 'tombstone', TOMBSTONE_KEYS)
  common(o)
  return o as unknown as TombstoneBody
}

function common (o: Record<string, unknown>): void {
  if (o.v !== WIRE_VERSION) fail(`unsupported wire version ${String(o.v)} (this peer speaks ${WIRE_VERSION})`)
  str(o.agent, 'agent', 200, 1)
  const id = splitAgentId(o.agent as string)
  if (id === undefined) fail('agent must be <host peer id>/<name>')
  if (!isEd25519PeerId(id.host)) fail('agent host is not an Ed25519 peer id')
  if (!NAME_PATTERN.test(id.name)) fail(`agent name must match ${NAME_PATTERN}`)
  int(o.version, 'version', 1)
  int(o.issuedAt, 'issuedAt', 0)
  int(o.expiresAt, 'expiresAt', 0)
  const issuedAt = o.issuedAt as number
  const expiresAt = o.expiresAt as number
  if (expiresAt <= issuedAt) fail('expiresAt must be after issuedAt')
  if (expiresAt - issuedAt > limits.maxTtlMs) fail(`lifetime exceeds ${limits.maxTtlMs} ms`)
}

function fail (reason: string): never {
  throw new ValidationError(reason)
}

function record (value: unknown, what: string, keys: string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    fail(`${what} must be a map`)
  }
  const o = value as Record<string, unknown>
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`${what} has unknown field "${k}"`)
  for (const k of keys) if (!(k in o)) fail(`${what} is missing "${k}"`)
  return o
}

function str (value: unknown, what: string, max: number, min = 0): void {
  if (typeof value !== 'string') fail(`${what} must be a string`)
  if (value.length < min || value.length > max) fail(`${what} must be ${min}..${max} characters`)
}

function num (value: unknown, what: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(`${what} must be a finite number >= 0`)
}

function int (value: unknown, what: string, min: number): void {
  if (!Number.isSafeInteger(value) || (value as number) < min) fail(`${what} must be an integer >= ${min}`)
}

function tokens (value: unknown, what: string, maxCount: number, maxLength: number): void {
  if (!Array.isArray(value) || value.length > maxCount) fail(`${what} must be a list of at most ${maxCount}`)
  const seen = new Set<string>()
  for (const t of value) {
    if (typeof t !== 'string' || t.length > maxLength || !TOKEN_PATTERN.test(t)) {
      fail(`${what} entries must be words of at most ${maxLength} characters`)
    }
    if (seen.has(t)) fail(`${what} has "${t}" twice`)
    seen.add(t)
  }
}

function jsonText (value: unknown, what: string): void {
  str(value, what, limits.maxSchemaBytes)
  let parsed: unknown
  try {
    parsed = JSON.parse(value as string)
  } catch {
    fail(`${what} is not JSON`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) fail(`${what} must be a JSON object`)
}
