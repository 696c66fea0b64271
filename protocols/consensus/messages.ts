/**
 * The consensus messages between committee members: proposals (a value with its evidence) and
 * votes (prevote, precommit), each signed by its sender; and the decided value's identity.
 */
import { encodeCanonical, oncePerArray } from '../cbor.ts'
import { sha256Hex } from '../hash.ts'
import { type Signer, type Verifier, isEd25519PeerId } from '../identity.ts'
import { decodeAnswer, json, type SignedAnswer } from './answer.ts'
import {
  ConsensusError, consensusLimits, decodeObject, HEX64, int, record, signObject, str, verifySigned, wireHash, type Signed, type SignedKind
} from './signed.ts'
import type { Json } from './types.ts'

/** What a committee commits: the aggregated answer, or that the tally is too close to call. */
export type Outcome = { kind: 'answer', answer: Json } | { kind: 'escalate' }

export interface ProposalBody {
  v: 1
  instance: string
  round: number
  /** The round in which this value gathered a quorum of prevotes, or -1 (Tendermint's validRound). */
  validRound: number
  outcome: Outcome
  /** The signed answers the outcome aggregates, sorted by hash. */
  evidence: Uint8Array[]
  /**
   * With a validRound: the prevotes of that round for this value (Tendermint's proof of lock).
   * Members that missed some of them (a Byzantine voter may send to only some) learn them here,
   * which is what lets a value locked by some members be accepted by all.
   */
  pol: Uint8Array[]
  proposer: string
}

export interface VoteBody {
  v: 1
  instance: string
  round: number
  type: 'prevote' | 'precommit'
  /** The value id voted for, or null (nil). */
  value: string | null
  voter: string
}

export type SignedProposal = Signed<ProposalBody>
export type SignedVote = Signed<VoteBody>
export type ConsensusMessage = SignedProposal | SignedVote

/** A proposal's value, decoded: the outcome, the evidence answers and the value id. */
export interface Value {
  outcome: Outcome
  evidence: SignedAnswer[]
  id: string
}

/** The value id: hex SHA-256 over the outcome and the evidence hashes (sorted). */
export function valueId (outcome: Outcome, evidenceHashes: readonly string[]): string {
  return sha256Hex(encodeCanonical({ outcome, evidence: [...evidenceHashes].sort() }))
}

/** Builds a value from answers: evidence sorted by hash, so equal sets give equal ids. */
export function makeValue (outcome: Outcome, answers: readonly SignedAnswer[]): Value {
  const evidence = [...answers].sort((a, b) => cmp(wireHash(a.wire), wireHash(b.wire)))
  return { outcome, evidence, id: valueId(outcome, evidence.map(a => wireHash(a.wire))) }
}

export function signProposal (body: Omit<ProposalBody, 'v' | 'proposer'>, signer: Signer): SignedProposal {
  return signObject('proposal', validateProposalBody({ v: 1, ...body, proposer: signer.peerId }), signer)
}

export function signVote (body: Omit<VoteBody, 'v' | 'voter'>, signer: Signer): SignedVote {
  return signObject('vote', validateVoteBody({ v: 1, ...body, voter: signer.peerId }), signer)
}

export const decodeMessage: (wire: Uint8Array) => ConsensusMessage = oncePerArray(wire =>
  decodeObject<ProposalBody | VoteBody>(wire, ['proposal', 'vote'], (kind: SignedKind, body) =>
    kind === 'proposal' ? validateProposalBody(body) : validateVoteBody(body)) as ConsensusMessage)

export function verifyMessage (message: ConsensusMessage, verifier: Verifier): boolean {
  return verifySigned(message, message.kind === 'proposal' ? (message.body as ProposalBody).proposer : (message.body as VoteBody).voter, verifier)
}

/** The value a proposal carries, its evidence decoded (signatures not yet checked). */
export function proposalValue (proposal: SignedProposal): Value {
  const evidence = proposal.body.evidence.map((wire, i) => {
    try {
      return decodeAnswer(wire)
    } catch (err) {
      throw new ConsensusError(`evidence ${i}: ${(err as Error).message}`)
    }
  })
  const hashes = evidence.map(a => wireHash(a.wire))
  for (let i = 1; i < hashes.length; i++) if (hashes[i - 1]! >= hashes[i]!) throw new ConsensusError('evidence must be sorted by hash, without duplicates')
  return { outcome: proposal.body.outcome, evidence, id: valueId(proposal.body.outcome, hashes) }
}

export function validateProposalBody (value: unknown): ProposalBody {
  const o = record(value, 'proposal', ['v', 'instance', 'round', 'validRound', 'outcome', 'evidence', 'pol', 'proposer'])
  if (o.v !== 1) throw new ConsensusError(`proposal version ${JSON.stringify(o.v)} is not supported (expected 1)`)
  const round = int(o.round, 'proposal round', 0, consensusLimits.maxRounds)
  const validRound = int(o.validRound, 'proposal validRound', -1, round - 1)
  if (!Array.isArray(o.evidence) || o.evidence.length > consensusLimits.maxExecutors) throw new ConsensusError(`proposal evidence must be a list of at most ${consensusLimits.maxExecutors} answers`)
  const evidence = o.evidence.map((e, i) => {
    if (!(e instanceof Uint8Array)) throw new ConsensusError(`proposal evidence ${i} must be bytes`)
    return e
  })
  if (!Array.isArray(o.pol) || o.pol.length > consensusLimits.maxMembers) throw new ConsensusError(`proposal pol must be a list of at most ${consensusLimits.maxMembers} votes`)
  if (validRound === -1 && o.pol.length > 0) throw new ConsensusError('a proposal without a validRound carries no pol')
  const pol = o.pol.map((e, i) => {
    if (!(e instanceof Uint8Array)) throw new ConsensusError(`proposal pol ${i} must be bytes`)
    return e
  })
  return {
    v: 1,
    instance: str(o.instance, 'proposal instance', 64, HEX64),
    round,
    validRound,
    outcome: validateOutcome(o.outcome),
    evidence,
    pol,
    proposer: peer(o.proposer, 'proposal proposer')
  }
}

export function validateVoteBody (value: unknown): VoteBody {
  const o = record(value, 'vote', ['v', 'instance', 'round', 'type', 'value', 'voter'])
  if (o.v !== 1) throw new ConsensusError(`vote version ${JSON.stringify(o.v)} is not supported (expected 1)`)
  if (o.type !== 'prevote' && o.type !== 'precommit') throw new ConsensusError(`vote type must be prevote or precommit, got ${JSON.stringify(o.type)}`)
  return {
    v: 1,
    instance: str(o.instance, 'vote instance', 64, HEX64),
    round: int(o.round, 'vote round', 0, consensusLimits.maxRounds),
    type: o.type,
    value: o.value === null ? null : str(o.value, 'vote value', 64, HEX64),
    voter: peer(o.voter, 'vote voter')
  }
}

/** An outcome: `{ kind: 'escalate' }`, or `{ kind: 'answer', answer }` with a JSON answer at most 32 deep. */
export function validateOutcome (value: unknown): Outcome {
  const kind = (value as { kind?: unknown } | null)?.kind
  if (kind === 'escalate') {
    record(value, 'outcome', ['kind'])
    return { kind: 'escalate' }
  }
  if (kind === 'answer') {
    const o = record(value, 'outcome', ['kind', 'answer'])
    return { kind: 'answer', answer: json(o.answer, 'outcome answer', 0) }
  }
  throw new ConsensusError('outcome must be { kind: "answer", answer } or { kind: "escalate" }')
}

function peer (value: unknown, what: string): string {
  const id = str(value, what, 64)
  if (!isEd25519PeerId(id)) throw new ConsensusError(`${what} is not an Ed25519 peer id`)
  return id
}

function cmp (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
