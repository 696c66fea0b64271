/**
 * Spot-check decisions, shared by the node (node/services/canaries.ts) and the simulator: when to follow
 * a dispatch with a canary (a call whose answer the requester knows), and how to judge one.
 *
 * Newcomers are checked first: an agent with fewer than `newcomerChecks` judged canaries gets
 * one after every dispatch, whatever the rate. A colluding group that could outvote honest
 * agents is then caught before its reputation carries weight, at the cost of a few calls per new
 * agent; after that, the rate keeps checking everyone at random.
 */
import { groupAnswers } from './equivalence.ts'
import type { ReputationBook } from './reputation.ts'
import type { EquivalenceRule, Json } from './types.ts'

export interface CanaryPolicy {
  /** Share of dispatches followed by a canary, 0..1. */
  rate: number
  /** Canaries judged before an agent is checked only at `rate` (default 2, or 0 when `rate` is 0: off means off). */
  newcomerChecks?: number
}

/**
 * Whether to follow a dispatch to `agent` with a canary. At most one is in flight per agent
 * (`inFlight`: the caller's count), so an agent that never answers canaries — not answering is
 * not judged — cannot double the calls it gets by staying a newcomer.
 */
export function wantsCanary (policy: CanaryPolicy, book: ReputationBook, agent: string, random: () => number, inFlight = 0): boolean {
  if (inFlight > 0) return false
  const c = book.counts(agent)
  if (c.canaryPassed + c.canaryFailed < (policy.newcomerChecks ?? (policy.rate > 0 ? 2 : 0))) return true
  return policy.rate > 0 && random() < policy.rate
}

/** Whether an agent's answer to a canary matches the known answer under `rule`. */
export function canaryPassed (known: Json, got: unknown, rule: EquivalenceRule = { kind: 'json' }): boolean {
  return groupAnswers([{ agent: 'truth/known', answer: known }, { agent: 'agent/answer', answer: (got ?? null) as Json }], rule).length === 1
}
