/**
 * An executor's answer, signed by the host of the agent that produced it: the evidence consensus
 * aggregates. The agent id names its host, and the host's key (inside its peer id) checks the
 * signature, so an answer cannot be forged for another host's agent.
 */
import { oncePerArray } from '../cbor.ts'
import { type Signer, type Verifier, isEd25519PeerId } from '../identity.ts'
import { FORBIDDEN_KEYS } from '../json.ts'
import { splitAgentId } from '../capability/schema.ts'
import { NAME_PATTERN } from '../capability/schema.ts'
import {
  ConsensusError, consensusLimits, decodeObject, HEX64, record, signObject, str, unitNumber, verifySigned, type Signed
} from './signed.ts'
import type { AnswerBody, Json } from './types.ts'
import { checkEndorsement, MAX_ENDORSED_REPLY_BYTES } from './endorsement.ts'

export type SignedAnswer = Signed<AnswerBody>

const MAX_DEPTH = 32

export function signAnswer (body: AnswerBody, signer: Signer): SignedAnswer {
  const checked = validateAnswerBody(body)
  if (splitAgentId(checked.agent)?.host !== signer.peerId) throw new ConsensusError(`${signer.peerId} cannot sign an answer for ${checked.agent}`)
  return signObject('answer', checked, signer, consensusLimits.maxAnswerBytes)
}

/** Parses and validates an answer; its signature is checked by `verifyAnswer`. */
export const decodeAnswer: (wire: Uint8Array) => SignedAnswer = oncePerArray(wire =>
  decodeObject(wire, ['answer'], (_kind, body) => validateAnswerBody(body), consensusLimits.maxAnswerBytes))

/** The host's signature, and the agent's own endorsement when the answer carries one. */
export function verifyAnswer (answer: SignedAnswer, verifier: Verifier): boolean {
  const host = splitAgentId(answer.body.agent)?.host
  if (host === undefined || !verifySigned(answer, host, verifier)) return false
  const e = answer.body.endorsement
  return e === undefined || checkEndorsement(e, answer.body, verifier)
}

export function validateAnswerBody (value: unknown): AnswerBody {
  const o = record(value, 'answer', ['v', 'subtask', 'inputHash', 'agent', 'answer'], ['confidence', 'endorsement'])
  if (o.v !== 1) throw new ConsensusError(`answer version ${JSON.stringify(o.v)} is not supported (expected 1)`)
  const subtask = str(o.subtask, 'answer subtask', consensusLimits.maxSubtaskLength)
  const inputHash = str(o.inputHash, 'answer inputHash', 64, HEX64)
  const agent = agentId(o.agent, 'answer agent')
  const answer = json(o.answer, 'answer', 0)
  const out: AnswerBody = { v: 1, subtask, inputHash, agent, answer }
  if (o.confidence !== undefined) out.confidence = unitNumber(o.confidence, 'answer confidence')
  if (o.endorsement !== undefined) {
    const e = record(o.endorsement, 'answer endorsement', ['key', 'sig', 'reply'])
    const bytes = (v: unknown, what: string, min: number, max: number): Uint8Array => {
      if (!(v instanceof Uint8Array) || v.byteLength < min || v.byteLength > max) throw new ConsensusError(`answer endorsement ${what} must be ${min === max ? `${min}` : `${min}..${max}`} bytes`)
      return v
    }
    out.endorsement = { key: bytes(e.key, 'key', 32, 32), sig: bytes(e.sig, 'sig', 64, 64), reply: bytes(e.reply, 'reply', 1, MAX_ENDORSED_REPLY_BYTES) }
  }
  return out
}

export function agentId (value: unknown, what: string): string {
  const agent = str(value, what, 160)
  const id = splitAgentId(agent)
  if (id === undefined || !isEd25519PeerId(id.host) || !NAME_PATTERN.test(id.name)) {
    throw new ConsensusError(`${what} must be <Ed25519 host peer id>/<name>, got ${JSON.stringify(agent.slice(0, 80))}`)
  }
  return agent
}

/** A JSON value (finite numbers, plain objects, no prototype keys), at most MAX_DEPTH deep. */
export function json (value: unknown, what: string, depth: number): Json {
  if (depth > MAX_DEPTH) throw new ConsensusError(`${what} is nested more than ${MAX_DEPTH} deep`)
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new ConsensusError(`${what} has a non-finite number`)
    return value
  }
  if (Array.isArray(value)) return value.map((x, i) => json(x, `${what}[${i}]`, depth + 1))
  if (typeof value === 'object' && !(value instanceof Uint8Array)) {
    const out: Record<string, Json> = {}
    for (const [k, v] of Object.entries(value)) {
      if (FORBIDDEN_KEYS.has(k)) throw new ConsensusError(`${what} has the forbidden key "${k}"`)
      out[k] = json(v, `${what}.${k}`, depth + 1)
    }
    return out
  }
  throw new ConsensusError(`${what} is not JSON (${typeof value})`)
}
