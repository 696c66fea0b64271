/**
 * Peer-to-peer requests about agents, over one length-prefixed stream per peer pair:
 * - `beacon`: the live state (load, queue, latency, availability) of some of the host's agents;
 * - `execute`: run one call of one agent, with a deadline; `cancel`: stop waiting for it. With
 *   `sign` the result also carries the answer signed by the host (consensus evidence);
 * - `notify`: a one-way message for another protocol (consensus), no answer.
 * Every message is deterministic CBOR with a numeric request id chosen by the requester.
 */
import { decodeCanonical, encodeCanonical } from '../cbor.ts'
import { NAME_PATTERN } from '../capability/schema.ts'

export const rpcLimits = {
  /** An execute request or result, input or output included. */
  maxMessageBytes: 1024 * 1024,
  maxBeaconAgents: 64,
  maxErrorLength: 2000,
  maxDeadlineMs: 24 * 60 * 60 * 1000
} as const

export interface LiveState {
  /** Local agent name on the answering host. */
  agent: string
  /** Calls running / capacity, 0..1 (may exceed 1 while queued calls wait). */
  load: number
  /** Calls waiting for a free slot. */
  queue: number
  /** Recent median latency of this agent's calls, ms (its advertised estimate until it has run). */
  latencyMs: number
  available: boolean
}

/**
 * A call's remaining time as the wire carries it: whole milliseconds within 1..maxDeadlineMs. A
 * deadline computed on a clock with fractions (`deadline - now`) is not a whole number, and a host
 * refuses the whole call for that: the requester would only hear of it at its own deadline.
 */
export function wireDeadline (ms: number): number {
  return Math.min(rpcLimits.maxDeadlineMs, Math.max(1, Number.isFinite(ms) ? Math.ceil(ms) : rpcLimits.maxDeadlineMs))
}

/** Why an execution failed: decides whether the router blames the agent. */
export type FailureKind = 'input' | 'unavailable' | 'failed' | 'timeout' | 'cancelled'

export type RpcMessage =
  | { t: 'beacon', id: number, agents: string[] }
  | { t: 'beacon-reply', id: number, states: LiveState[] }
  | { t: 'execute', id: number, agent: string, input: unknown, deadlineMs: number, sign?: SignRequest }
  | { t: 'result', id: number, ok: true, output: unknown, confidence: number | null, latencyMs: number, answer?: Uint8Array }
  | { t: 'result', id: number, ok: false, kind: FailureKind, error: string }
  | { t: 'cancel', id: number }
  | { t: 'notify', id: number, data: Uint8Array }

/** Which subtask and input an executor's host signs its answer for. */
export interface SignRequest { subtask: string, inputHash: string }

export class RpcError extends Error {
  override name = 'RpcError'
}

export function encodeRpc (message: RpcMessage): Uint8Array {
  const bytes = encodeCanonical(message)
  if (bytes.byteLength > rpcLimits.maxMessageBytes) throw new RpcError(`message is ${bytes.byteLength} bytes, limit ${rpcLimits.maxMessageBytes}`)
  return bytes
}

/** Decodes and validates one message; throws an RpcError with the reason. */
export function decodeRpc (bytes: Uint8Array): RpcMessage {
  if (bytes.byteLength > rpcLimits.maxMessageBytes) throw new RpcError(`message is ${bytes.byteLength} bytes, limit ${rpcLimits.maxMessageBytes}`)
  let value: unknown
  try {
    value = decodeCanonical(bytes)
  } catch (err) {
    throw new RpcError(`not canonical CBOR: ${(err as Error).message}`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RpcError('message must be a map')
  const m = value as Record<string, unknown>
  if (!Number.isSafeInteger(m.id) || (m.id as number) < 0) throw new RpcError('id must be an integer >= 0')
  switch (m.t) {
    case 'beacon':
      fields(m, ['t', 'id', 'agents'])
      if (!Array.isArray(m.agents) || m.agents.length === 0 || m.agents.length > rpcLimits.maxBeaconAgents || !m.agents.every(isName)) {
        throw new RpcError(`beacon names 1..${rpcLimits.maxBeaconAgents} agents`)
      }
      break
    case 'beacon-reply':
      fields(m, ['t', 'id', 'states'])
      if (!Array.isArray(m.states) || m.states.length > rpcLimits.maxBeaconAgents) throw new RpcError('beacon-reply states must be a list')
      for (const s of m.states) liveState(s)
      break
    case 'execute':
      fields(m, ['t', 'id', 'agent', 'input', 'deadlineMs'], ['sign'])
      if (m.sign !== undefined) signRequest(m.sign)
      if (!isName(m.agent)) throw new RpcError('execute names an agent by its local name')
      if (!Number.isSafeInteger(m.deadlineMs) || (m.deadlineMs as number) < 1 || (m.deadlineMs as number) > rpcLimits.maxDeadlineMs) {
        throw new RpcError(`deadlineMs must be 1..${rpcLimits.maxDeadlineMs}`)
      }
      break
    case 'result':
      if (m.ok === true) {
        fields(m, ['t', 'id', 'ok', 'output', 'confidence', 'latencyMs'], ['answer'])
        if (m.answer !== undefined && !(m.answer instanceof Uint8Array)) throw new RpcError('answer must be bytes')
        if (m.confidence !== null && (typeof m.confidence !== 'number' || !(m.confidence >= 0 && m.confidence <= 1))) throw new RpcError('confidence must be in [0, 1] or null')
        if (typeof m.latencyMs !== 'number' || !(m.latencyMs >= 0)) throw new RpcError('latencyMs must be >= 0')
      } else if (m.ok === false) {
        fields(m, ['t', 'id', 'ok', 'kind', 'error'])
        if (!['input', 'unavailable', 'failed', 'timeout', 'cancelled'].includes(m.kind as string)) throw new RpcError(`unknown failure kind ${JSON.stringify(m.kind)}`)
        if (typeof m.error !== 'string' || m.error.length > rpcLimits.maxErrorLength) throw new RpcError('error must be a short string')
      } else {
        throw new RpcError('result needs ok: true or false')
      }
      break
    case 'cancel':
      fields(m, ['t', 'id'])
      break
    case 'notify':
      fields(m, ['t', 'id', 'data'])
      if (!(m.data instanceof Uint8Array)) throw new RpcError('notify data must be bytes')
      break
    default:
      throw new RpcError(`unknown message type ${JSON.stringify(m.t)}`)
  }
  return m as RpcMessage
}

function isName (v: unknown): v is string {
  return typeof v === 'string' && NAME_PATTERN.test(v)
}

function fields (m: Record<string, unknown>, required: string[], optional: string[] = []): void {
  for (const k of Object.keys(m)) if (!required.includes(k) && !optional.includes(k)) throw new RpcError(`${String(m.t)} has unknown field "${k}"`)
  for (const k of required) if (!(k in m)) throw new RpcError(`${String(m.t)} is missing "${k}"`)
}

function signRequest (s: unknown): void {
  if (typeof s !== 'object' || s === null) throw new RpcError('sign must be a map')
  const o = s as Record<string, unknown>
  fields({ t: 'sign', ...o }, ['t', 'subtask', 'inputHash'])
  if (typeof o.subtask !== 'string' || o.subtask.length === 0 || o.subtask.length > 256) throw new RpcError('sign.subtask must be a string of 1..256 characters')
  if (typeof o.inputHash !== 'string' || !/^[0-9a-f]{64}$/.test(o.inputHash)) throw new RpcError('sign.inputHash must be 64 hex digits')
}

function liveState (s: unknown): void {
  if (typeof s !== 'object' || s === null) throw new RpcError('a live state must be a map')
  const o = s as Record<string, unknown>
  fields({ t: 'state', ...o }, ['t', 'agent', 'load', 'queue', 'latencyMs', 'available'])
  if (!isName(o.agent)) throw new RpcError('live state names an agent')
  if (typeof o.load !== 'number' || !(o.load >= 0)) throw new RpcError('load must be >= 0')
  if (!Number.isSafeInteger(o.queue) || (o.queue as number) < 0) throw new RpcError('queue must be an integer >= 0')
  if (typeof o.latencyMs !== 'number' || !(o.latencyMs >= 0)) throw new RpcError('latencyMs must be >= 0')
  if (typeof o.available !== 'boolean') throw new RpcError('available must be true or false')
}
