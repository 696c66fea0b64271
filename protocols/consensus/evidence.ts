/**
 * Proof of equivocation: two messages signed by one committee member that the protocol forbids
 * together — two votes of one type in one round of one instance for different values, or two
 * different proposals for one round. Anyone can check a proof offline, so it is gossiped and
 * every peer cuts the offender's reputation the same way.
 *
 * Two different answers signed for one subtask are NOT proof: a requester can ask an honest host
 * to run a non-deterministic agent twice and so manufacture them. The instance keeps the first
 * answer and ignores the second; nobody is punished for it.
 */
import { decodeCanonical, encodeCanonical } from '../cbor.ts'
import { sha256Hex } from '../hash.ts'
import type { Verifier } from '../identity.ts'
import { decodeMessage, verifyMessage, type ProposalBody, type VoteBody } from './messages.ts'
import { ConsensusError, consensusLimits, record, wireHash } from './signed.ts'

export interface Equivocation {
  /** Order-independent id: the hash of the two messages' hashes, sorted. */
  id: string
  /** The member (peer id) that signed both. */
  host: string
  instance: string
  round: number
}

export function encodeEquivocation (first: Uint8Array, second: Uint8Array): Uint8Array {
  const [a, b] = [first, second].sort((x, y) => (wireHash(x) < wireHash(y) ? -1 : 1))
  return encodeCanonical({ t: 'equivocation', first: a, second: b })
}

/** Checks a proof completely: both signatures, same signer, same slot, different content. */
export function checkEquivocation (bytes: Uint8Array, verifier: Verifier): Equivocation {
  if (bytes.byteLength > 2 * consensusLimits.maxMessageBytes) throw new ConsensusError('equivocation proof is too large')
  let value: unknown
  try {
    value = decodeCanonical(bytes)
  } catch (err) {
    throw new ConsensusError(`equivocation proof is not canonical CBOR: ${(err as Error).message}`)
  }
  const o = record(value, 'equivocation proof', ['t', 'first', 'second'])
  if (o.t !== 'equivocation' || !(o.first instanceof Uint8Array) || !(o.second instanceof Uint8Array)) throw new ConsensusError('not an equivocation proof')
  const first = decodeMessage(o.first)
  const second = decodeMessage(o.second)
  if (wireHash(o.first) === wireHash(o.second)) throw new ConsensusError('the two messages are the same')
  let host: string
  let instance: string
  let round: number
  if (first.kind === 'vote' && second.kind === 'vote') {
    const [a, b] = [first.body as VoteBody, second.body as VoteBody]
    if (a.voter !== b.voter || a.instance !== b.instance || a.round !== b.round || a.type !== b.type) throw new ConsensusError('the votes are not for the same instance, round and type by one voter')
    if (a.value === b.value) throw new ConsensusError('the votes are for the same value')
    host = a.voter
    instance = a.instance
    round = a.round
  } else if (first.kind === 'proposal' && second.kind === 'proposal') {
    const [a, b] = [first.body as ProposalBody, second.body as ProposalBody]
    if (a.proposer !== b.proposer || a.instance !== b.instance || a.round !== b.round) throw new ConsensusError('the proposals are not for the same instance and round by one proposer')
    host = a.proposer
    instance = a.instance
    round = a.round
  } else {
    throw new ConsensusError('a proof is two votes or two proposals')
  }
  if (!verifyMessage(first, verifier) || !verifyMessage(second, verifier)) throw new ConsensusError(`a message in the proof is not signed by ${host}`)
  const id = sha256Hex([wireHash(o.first), wireHash(o.second)].sort().join(''))
  return { id, host, instance, round }
}
