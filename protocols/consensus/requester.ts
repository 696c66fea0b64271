/**
 * The requester's side of a trusted subtask, without I/O: whether the answers so far can go to
 * the committee (or one more execution is needed first: first-to-ahead-by-margin), and the
 * committee statement's body (members, their capped voting power, the executors' standing).
 * The node and the simulator both sign and run what these return.
 */
import { aggregate, defaultAggregationConfig } from './aggregate.ts'
import { drawMembers, MIN_MEMBERS, votingPowers, type CommitteeBody } from './committee.ts'
import type { Standings } from './reputation.ts'
import { ConsensusError } from './signed.ts'
import type { AggregationConfig, AnswerBody, AnswerClass, EquivalenceRule, Verdict } from './types.ts'
import type { Embed } from './validity.ts'

/**
 * While more executions may be added (`final` false), a tally that is not ahead by the margin
 * asks for one instead of committing (or escalating) early.
 */
export function readyToAgree (answers: readonly AnswerBody[], rule: EquivalenceRule, book: Standings, final: boolean, embed?: Embed): { ready: true } | { ready: false, reason: string } {
  if (final) return { ready: true }
  const verdict = aggregate(answers, rule, agent => book.standing(agent), {}, embed)
  return verdict.kind === 'decided' ? { ready: true } : { ready: false, reason: `too close to call: ${tally(verdict)}` }
}

export interface CommitteeRequest {
  /** The requester's peer id: it signs the statement and is a member. */
  requester: string
  subtask: string
  inputHash: string
  /** Agent ids of the executors whose answers the committee weighs. */
  executors: readonly string[]
  /** Peers that may be drawn in (by hash of the subtask) when the executors' hosts are too few. */
  candidates?: readonly string[]
  /** Members wanted (at least MIN_MEMBERS). */
  size?: number
  rule?: EquivalenceRule
  aggregation?: Partial<AggregationConfig>
}

/** The statement body: the executors' hosts and the requester, plus drawn members up to the size. */
export function committeeBody (o: CommitteeRequest, book: Standings): CommitteeBody {
  const hosts = new Set([o.requester, ...o.executors.map(a => a.split('/')[0]!)])
  const want = Math.max(MIN_MEMBERS, o.size ?? 0)
  if (hosts.size < want) for (const id of drawMembers(o.subtask, o.candidates ?? [], want - hosts.size, hosts)) hosts.add(id)
  if (hosts.size < MIN_MEMBERS) throw new ConsensusError(`a committee needs ${MIN_MEMBERS} members; only ${hosts.size} peers are available (connect more peers or run more executors)`)
  return {
    v: 1,
    subtask: o.subtask,
    inputHash: o.inputHash,
    requester: o.requester,
    members: votingPowers(new Map([...hosts].map(h => [h, book.hostReputation(h)]))),
    executors: [...new Set(o.executors)].sort().map(agent => ({ agent, ...book.standing(agent) })),
    rule: o.rule ?? { kind: 'json' },
    aggregation: { ...defaultAggregationConfig, ...o.aggregation }
  }
}

/** "2 × {"value":42} (0.61) vs 1 × {"value":41} (0.30)" */
export function tally (verdict: Verdict): string {
  if (verdict.kind === 'empty') return 'no answers'
  return verdict.classes.map((c: AnswerClass) => `${c.agents.length} × ${JSON.stringify(c.value).slice(0, 60)} (${c.weight.toFixed(2)})`).join(' vs ')
}
