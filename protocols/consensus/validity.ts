/**
 * Whether a proposed value is valid for an instance: the check every honest member makes before
 * prevoting, and `verifyCertificate` makes offline. The outcome must be exactly what aggregating
 * the evidence gives; the evidence must be genuine signed answers to this subtask and input from
 * the statement's executors, one per agent, covering more than the configured share (at least 2/3)
 * of the executor weight.
 */
import { canonicalJson } from '../hash.ts'
import type { Verifier } from '../identity.ts'
import { aggregate } from './aggregate.ts'
import { verifyAnswer } from './answer.ts'
import { wireHash } from './signed.ts'
import { statementAggregation, type CommitteeBody, type Executor } from './committee.ts'
import type { Outcome, Value } from './messages.ts'
import type { AnswerBody, Standing, Verdict } from './types.ts'

/** Every member must embed identically for the embedding rule; the node passes its embedder. */
export type Embed = (text: string) => Float32Array | readonly number[]

/** The weight an executor counts for in coverage: its reputation, floored so a newcomer still counts. */
function executorWeight (e: Executor): number {
  return Math.max(0.01, e.reputation)
}

export function standingOf (statement: CommitteeBody): (agent: string) => Standing {
  const byAgent = new Map(statement.executors.map(e => [e.agent, e]))
  return agent => {
    const e = byAgent.get(agent)
    return e === undefined ? { reputation: 0, accuracy: 0 } : { reputation: e.reputation, accuracy: e.accuracy, ...(e.calibration !== undefined ? { calibration: e.calibration } : {}) }
  }
}

/** Share of the executor weight whose answers are among `agents`. */
export function coverageOf (statement: CommitteeBody, agents: Iterable<string>): number {
  const present = new Set(agents)
  let covered = 0
  let total = 0
  for (const e of statement.executors) {
    total += executorWeight(e)
    if (present.has(e.agent)) covered += executorWeight(e)
  }
  return total === 0 ? 0 : covered / total
}

/** What aggregating these answers commits to under the statement's rule and standings. */
export function outcomeOf (statement: CommitteeBody, answers: readonly AnswerBody[], embed?: Embed): { outcome: Outcome, verdict: Verdict } {
  const verdict = aggregate(answers, statement.rule, standingOf(statement), statementAggregation(statement.aggregation), embed)
  return { outcome: verdict.kind === 'decided' ? { kind: 'answer', answer: verdict.value } : { kind: 'escalate' }, verdict }
}

/**
 * Undefined when `value` is valid for the instance, else the reason. `verified` caches answer
 * signature checks by wire hash across calls (and with the instance's own checks on arrival).
 */
export function invalidReason (statement: CommitteeBody, value: Value, verifier: Verifier, embed?: Embed, verified?: Map<string, boolean>): string | undefined {
  const executors = new Set(statement.executors.map(e => e.agent))
  const seen = new Set<string>()
  for (const answer of value.evidence) {
    const b = answer.body
    if (b.subtask !== statement.subtask) return `evidence answers subtask ${b.subtask}, not ${statement.subtask}`
    if (b.inputHash !== statement.inputHash) return `evidence from ${b.agent} answers another input`
    if (!executors.has(b.agent)) return `evidence from ${b.agent}, which is not an executor of this subtask`
    if (seen.has(b.agent)) return `two answers from ${b.agent} in the evidence`
    seen.add(b.agent)
    const key = wireHash(answer.wire)
    let ok = verified?.get(key)
    if (ok === undefined) {
      ok = verifyAnswer(answer, verifier)
      verified?.set(key, ok)
    }
    if (!ok) return `evidence from ${b.agent} has a bad signature`
  }
  const coverage = coverageOf(statement, seen)
  if (!(coverage > statement.aggregation.coverage)) {
    return `evidence covers ${(100 * coverage).toFixed(1)}% of the executor weight; more than ${(100 * statement.aggregation.coverage).toFixed(1)}% is required`
  }
  let outcome: Outcome
  try {
    outcome = outcomeOf(statement, value.evidence.map(a => a.body), embed).outcome
  } catch (err) { // e.g. the embedding rule without an embedder
    return `cannot recompute the aggregation: ${(err as Error).message}`
  }
  if (canonicalJson(outcome) !== canonicalJson(value.outcome)) {
    return `the evidence aggregates to ${canonicalJson(outcome).slice(0, 200)}, not the proposed ${canonicalJson(value.outcome).slice(0, 200)}`
  }
  return undefined
}
