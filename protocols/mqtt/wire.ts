/**
 * What travels between the bridge and an MQTT agent, pure. JSON in both directions so a shell
 * script with `mosquitto_pub` can take part; the MQTT 5 properties carry the same ids so a client
 * library can match them without parsing the payload.
 *
 * Request, published by the bridge at QoS 1 on `agents/<client>/<agent>/request`:
 *
 * ```json
 * { "attempt": "3f9c…-17", "input": { "room": 4 }, "deadlineMs": 5000 }
 * ```
 * properties: response topic `agents/<client>/<agent>/reply/<bridge>`, correlation data = the
 * attempt id (UTF-8), message expiry = the deadline rounded up to whole seconds (a request the
 * broker holds past its deadline is dropped, never run late), user property `attempt`.
 *
 * Reply, published by the agent on the response topic with the same correlation data:
 *
 * ```json
 * { "output": { "celsius": 21.5 }, "confidence": 0.9 }            // done
 * { "error": "room 9 has no sensor", "kind": "input" }             // refused: "input" or "failed"
 * ```
 * `attempt` may stand in the payload instead of the correlation data (mosquitto_pub -D works
 * too). An agent whose advert has a `publicKey` gets `"sign": { subtask, inputHash, agent }` in
 * each request and sends, as the user property `signature`, the base64 Ed25519 signature of
 * `endorsementMessage(subtask, inputHash, agent, <reply payload bytes>)`. An attempt id is unique per try: a redelivered request (QoS 1 may deliver twice) carries
 * the same id, so an agent may answer it from a cache, and the bridge takes the first reply only.
 */
import { typeName } from '../json.ts'

/** Largest reply the bridge reads: what one RPC answer may carry, less room for its envelope. */
export const MAX_REPLY_BYTES = 960 * 1024
/** Largest task a client may submit over MQTT (the API's JSON body limit is larger; MQTT clients are small). */
export const MAX_SUBMIT_BYTES = 256 * 1024
const ATTEMPT = /^[A-Za-z0-9._-]{1,80}$/

export class MqttWireError extends Error {
  override name = 'MqttWireError'
}

export interface MqttRequest {
  attempt: string
  input: unknown
  deadlineMs: number
  /** For an agent with its own key: what its reply's signature binds (protocols/consensus/endorsement.ts). */
  sign?: { subtask: string, inputHash: string, agent: string }
}

export type MqttReply =
  | { attempt?: string, ok: true, output: unknown, confidence?: number }
  | { attempt?: string, ok: false, kind: 'input' | 'failed', error: string }

export function encodeRequest (r: MqttRequest): Uint8Array {
  if (!ATTEMPT.test(r.attempt)) throw new MqttWireError(`attempt id "${r.attempt.slice(0, 90)}" must be 1–80 characters of A-Z a-z 0-9 . _ -`)
  return new TextEncoder().encode(JSON.stringify({ attempt: r.attempt, input: r.input ?? null, deadlineMs: Math.max(0, Math.round(r.deadlineMs)), ...(r.sign === undefined ? {} : { sign: r.sign }) }))
}

/** Message expiry for a request: whole seconds, at least 1 (0 would mean "never expires"). */
export function expirySeconds (deadlineMs: number): number {
  return Math.max(1, Math.ceil(deadlineMs / 1000))
}

/** Parses an agent's reply; throws MqttWireError with what to send instead. */
export function parseReply (payload: Uint8Array): MqttReply {
  if (payload.byteLength > MAX_REPLY_BYTES) throw new MqttWireError(`a reply is at most ${MAX_REPLY_BYTES / 1024} KiB, this one is ${payload.byteLength} bytes`)
  const o = jsonObject(payload, 'a reply')
  for (const key of Object.keys(o)) {
    if (!['attempt', 'output', 'confidence', 'error', 'kind'].includes(key)) throw new MqttWireError(`a reply has no field "${key.slice(0, 40)}" — send { "output": …, "confidence"?: 0..1 } or { "error": "why", "kind"?: "input" | "failed" }`)
  }
  const attempt = o.attempt === undefined ? undefined : attemptId(o.attempt)
  const at = attempt === undefined ? {} : { attempt }
  if ('error' in o) {
    if ('output' in o) throw new MqttWireError('a reply has "output" or "error", not both')
    if (typeof o.error !== 'string' || o.error === '') throw new MqttWireError('"error" must be a non-empty string saying why')
    const kind = o.kind ?? 'failed'
    if (kind !== 'input' && kind !== 'failed') throw new MqttWireError('"kind" must be "input" (the request was wrong) or "failed" (the agent could not do it)')
    return { ...at, ok: false, kind, error: o.error.slice(0, 1000) }
  }
  if (!('output' in o)) throw new MqttWireError('a reply needs "output" (the answer) or "error" (why there is none)')
  if (o.kind !== undefined) throw new MqttWireError('"kind" goes with "error" only')
  const c = o.confidence
  if (c !== undefined && (typeof c !== 'number' || !(c >= 0 && c <= 1))) throw new MqttWireError(`"confidence" must be a number from 0 to 1, not ${typeName(c)}`)
  return { ...at, ok: true, output: o.output, ...(c === undefined ? {} : { confidence: c }) }
}

/** An attempt id from correlation data or a payload field. */
export function attemptId (value: unknown): string {
  const text = value instanceof Uint8Array ? new TextDecoder().decode(value) : value
  if (typeof text !== 'string' || !ATTEMPT.test(text)) throw new MqttWireError('the attempt id (correlation data or "attempt") must be the one the request carried')
  return text
}

/** A submitted task's JSON (checked against the task schema by the task board, not here). */
export function parseSubmit (payload: Uint8Array): unknown {
  if (payload.byteLength > MAX_SUBMIT_BYTES) throw new MqttWireError(`a task sent over MQTT is at most ${MAX_SUBMIT_BYTES / 1024} KiB, this one is ${payload.byteLength} bytes`)
  return jsonObject(payload, 'a task')
}

function jsonObject (payload: Uint8Array, what: string): Record<string, unknown> {
  let doc: unknown
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload))
  } catch (err) {
    throw new MqttWireError(`${what} must be UTF-8 JSON: ${(err as Error).message.slice(0, 120)}`)
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new MqttWireError(`${what} must be a JSON object, not ${typeName(doc)}`)
  return doc as Record<string, unknown>
}
