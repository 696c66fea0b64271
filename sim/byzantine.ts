/**
 * Byzantine committee members: a member runs the honest consensus code but rewrites what it
 * sends. One adversary model, used by the simulator's Byzantine nodes and by the consensus
 * property tests (test/helpers/committee.ts).
 *
 * - `silent`: sends nothing (withheld votes, a crashed member);
 * - `equivocate`: double votes, and as proposer two valid values to two halves of the committee;
 * - `double-vote`: its real vote to half the committee, a conflicting one to the rest;
 * - `junk`: before each real vote, three signed votes for made-up values (to crowd out the real
 *   one), and votes for rounds far ahead and for the last round (to drag members there).
 */
import type { Signer } from '../protocols/identity.ts'
import { decodeMessage, makeValue, signProposal, signVote, type ProposalBody, type VoteBody } from '../protocols/consensus/messages.ts'
import type { SignedAnswer } from '../protocols/consensus/answer.ts'
import type { CommitteeBody } from '../protocols/consensus/committee.ts'
import { outcomeOf } from '../protocols/consensus/validity.ts'

export type ByzantineBehaviour = 'silent' | 'equivocate' | 'double-vote' | 'junk'

export interface RewriteContext {
  me: Signer
  /** Which half of the committee the recipient is in (equivocation splits the committee in two). */
  firstHalf: boolean
  /** The instance's statement and the answers this member holds (an equivocating proposer needs them). */
  statement: CommitteeBody
  answers: readonly SignedAnswer[]
}

/** What a Byzantine member sends instead of one instance message `data` (a proposal or vote). */
export function rewrite (behaviour: ByzantineBehaviour, data: Uint8Array, ctx: RewriteContext): Uint8Array[] {
  if (behaviour === 'silent') return []
  let message
  try {
    message = decodeMessage(data)
  } catch {
    return [data] // answers and certificates pass unchanged
  }
  const { me } = ctx
  if (behaviour === 'junk') {
    if (message.kind !== 'vote') return [data]
    const v = message.body as VoteBody
    const out: Uint8Array[] = []
    for (let j = 0; j < 3; j++) out.push(signVote({ instance: v.instance, round: v.round, type: v.type, value: String(j).repeat(64) }, me).wire)
    out.push(signVote({ instance: v.instance, round: Math.min(1000, v.round + 50), type: 'precommit', value: null }, me).wire)
    out.push(signVote({ instance: v.instance, round: 1000, type: 'prevote', value: null }, me).wire)
    out.push(data)
    return out
  }
  if (message.kind === 'vote') {
    const v = message.body as VoteBody
    // Double votes: the real vote to half the committee, a vote for something else to the rest.
    const other = signVote({ instance: v.instance, round: v.round, type: v.type, value: v.value === null ? 'cd'.repeat(32) : null }, me)
    return [ctx.firstHalf ? data : other.wire]
  }
  const p = message.body as ProposalBody
  if (behaviour === 'equivocate' && p.evidence.length > 1) {
    // Equivocating proposer: half the committee gets another valid value, one answer fewer.
    const held = ctx.answers.filter(a => p.evidence.some(w => sameBytes(w, a.wire))).slice(1)
    const fewer = makeValue(outcomeOf(ctx.statement, held.map(a => a.body)).outcome, held)
    const alt = signProposal({ instance: p.instance, round: p.round, validRound: -1, outcome: fewer.outcome, evidence: fewer.evidence.map(a => a.wire), pol: [] }, me)
    return [ctx.firstHalf ? data : alt.wire]
  }
  return [data]
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i])
}
