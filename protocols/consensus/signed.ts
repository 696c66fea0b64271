/**
 * Signed consensus objects on the wire: `{ t, body: <canonical CBOR of the body>, sig }`, the
 * signature over a domain tag per type plus the body bytes, so no signature can be replayed as
 * another kind of message (or as a VCV). Decoding validates shape and size and names the reason
 * for any refusal; signatures are checked separately, by whoever needs them.
 */
import { decodeCanonical, encodeCanonical, oncePerArray } from '../cbor.ts'
import { sha256Hex } from '../hash.ts'
import type { Signer, Verifier } from '../identity.ts'

export type SignedKind = 'answer' | 'committee' | 'proposal' | 'vote'

export class ConsensusError extends Error {
  override name = 'ConsensusError'
}

export const consensusLimits = {
  /** One signed answer (its JSON answer included). */
  maxAnswerBytes: 30 * 1024,
  /**
   * Executors per subtask: a proposal carrying this many answers of the largest size plus a
   * proof of lock of `maxMembers` prevotes (~300 bytes each) still fits one 1 MiB message.
   */
  maxExecutors: 31,
  maxMembers: 64,
  /** Any one consensus message: a proposal carries every answer as evidence. */
  maxMessageBytes: 1024 * 1024,
  maxSubtaskLength: 256,
  maxRounds: 1000
} as const

export interface Signed<Body> {
  kind: SignedKind
  body: Body
  bodyBytes: Uint8Array
  sig: Uint8Array
  /** The whole object as sent; its hash names it. */
  wire: Uint8Array
}

const encoder = new TextEncoder()
const domains: Record<SignedKind, Uint8Array> = {
  answer: encoder.encode('agentmesh:answer:1\n'),
  committee: encoder.encode('agentmesh:committee:1\n'),
  proposal: encoder.encode('agentmesh:proposal:1\n'),
  vote: encoder.encode('agentmesh:vote:1\n')
}

function signingInput (kind: SignedKind, bodyBytes: Uint8Array): Uint8Array {
  const domain = domains[kind]
  const out = new Uint8Array(domain.byteLength + bodyBytes.byteLength)
  out.set(domain, 0)
  out.set(bodyBytes, domain.byteLength)
  return out
}

export function signObject<Body> (kind: SignedKind, body: Body, signer: Signer, maxBytes: number = consensusLimits.maxMessageBytes): Signed<Body> {
  const bodyBytes = encodeCanonical(body)
  const sig = signer.sign(signingInput(kind, bodyBytes))
  const wire = encodeCanonical({ t: kind, body: bodyBytes, sig })
  if (wire.byteLength > maxBytes) throw new ConsensusError(`${kind} is ${wire.byteLength} bytes, limit ${maxBytes}`)
  return { kind, body, bodyBytes, sig, wire }
}

/**
 * Decodes the envelope and the body (canonical CBOR only); `validate` checks the body's fields.
 * The decoders built on it (answers, statements, proposals and votes) run once per array
 * (`oncePerArray`): in the simulator one array reaches every member.
 */
export function decodeObject<Body> (wire: Uint8Array, kinds: readonly SignedKind[], validate: (kind: SignedKind, body: unknown) => Body, maxBytes: number = consensusLimits.maxMessageBytes): Signed<Body> {
  if (!(wire instanceof Uint8Array)) throw new ConsensusError('message must be bytes')
  if (wire.byteLength > maxBytes) throw new ConsensusError(`message is ${wire.byteLength} bytes, limit ${maxBytes}`)
  const outer = decodeOrFail(wire, 'message')
  if (typeof outer !== 'object' || outer === null || Array.isArray(outer) || outer instanceof Uint8Array) throw new ConsensusError('message must be a map')
  const { t, body, sig, ...rest } = outer as Record<string, unknown>
  if (Object.keys(rest).length > 0) throw new ConsensusError(`message has unknown field "${Object.keys(rest)[0]}"`)
  if (typeof t !== 'string' || !(kinds as readonly string[]).includes(t)) throw new ConsensusError(`expected ${kinds.join(' or ')}, got ${JSON.stringify(t)}`)
  if (!(body instanceof Uint8Array)) throw new ConsensusError('body must be bytes')
  if (!(sig instanceof Uint8Array) || sig.byteLength !== 64) throw new ConsensusError('signature must be 64 bytes')
  const kind = t as SignedKind
  return { kind, body: validate(kind, decodeOrFail(body, `${kind} body`)), bodyBytes: body, sig, wire }
}

/**
 * The `t` of a consensus envelope read from its first bytes, without decoding it, or undefined
 * when they are not laid out as a canonical encoder lays out a small map with "t" first (the
 * shortest key sorts first): then the caller decodes. The decoder that reads the message next
 * validates all of it, so a wrong guess is refused there.
 */
export function peekKind (wire: Uint8Array): string | undefined {
  if (wire.byteLength < 4 || wire[0]! < 0xa1 || wire[0]! > 0xb7 || wire[1] !== 0x61 || wire[2] !== 0x74) return undefined
  const head = wire[3]!
  if (head < 0x61 || head > 0x77 || wire.byteLength < 4 + (head - 0x60)) return undefined
  let kind = ''
  for (let i = 4; i < 4 + (head - 0x60); i++) {
    const c = wire[i]!
    if (c < 0x61 || c > 0x7a) return undefined // lower-case letters only
    kind += String.fromCharCode(c)
  }
  return kind
}

export function verifySigned (obj: Signed<unknown>, signerId: string, verifier: Verifier): boolean {
  return verifier.verify(signerId, signingInput(obj.kind, obj.bodyBytes), obj.sig)
}

/** Hex SHA-256 of the wire bytes: how evidence and certificates name signed objects. */
export const wireHash: (wire: Uint8Array) => string = oncePerArray(wire => sha256Hex(wire))

function decodeOrFail (bytes: Uint8Array, what: string): unknown {
  try {
    return decodeCanonical(bytes)
  } catch (err) {
    throw new ConsensusError(`${what} is not canonical CBOR: ${(err as Error).message}`)
  }
}

// ---- field checks shared by the bodies ----------------------------------------------------------

export function record (value: unknown, what: string, fields: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) throw new ConsensusError(`${what} must be a map`)
  const obj = value as Record<string, unknown>
  for (const key of Object.keys(obj)) if (!fields.includes(key) && !optional.includes(key)) throw new ConsensusError(`${what} has unknown field "${key}"`)
  for (const key of fields) if (!(key in obj)) throw new ConsensusError(`${what} is missing "${key}"`)
  return obj
}

export function str (value: unknown, what: string, max: number, pattern?: RegExp): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) throw new ConsensusError(`${what} must be a string of 1..${max} characters`)
  if (pattern !== undefined && !pattern.test(value)) throw new ConsensusError(`${what} is malformed: ${JSON.stringify(value.slice(0, 80))}`)
  return value
}

export function int (value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw new ConsensusError(`${what} must be an integer in ${min}..${max}`)
  return value
}

export function unitNumber (value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) throw new ConsensusError(`${what} must be a number in 0..1`)
  return value
}

export const HEX64 = /^[0-9a-f]{64}$/
