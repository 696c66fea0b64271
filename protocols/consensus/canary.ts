/**
 * Spot-check decisions, shared by the node (node/services/canaries.ts) and the simulator: when to follow
 * a dispatch with a canary (a call whose answer the requester knows), and how to judge one.
 *
 * Newcomers are checked first: an agent with fewer than `newcomerChecks` judged canaries gets
 * one after every dispatch, whatever the rate. A colluding group that could outvote honest
 * agents is then caught before its reputation carries weight, at the cost of a few calls per new
 * agent; after that, the rate keeps checking everyone at random.
 *
 * Dissent is checked too (`onDissent`, default on): when the executors of a trusted subtask do
 * not all agree (the tally was split, the committee escalated, or it committed over dissenters),
 * every one of them gets a canary. A split is exactly when counting heads can go wrong, and it is
 * what "sleepers" (honest through their first checks, lying after) produce the moment they turn:
 * the escalation teaches the book who was lying instead of teaching nothing.
 *
 * And nobody's first trusted answer carries weight unchecked (`qualify`, default on): before a
 * requester aggregates a trusted subtask, every executor without a judged canary gets one, and
 * the tally waits for it (up to the canary deadline). Until then a colluding group of newcomers
 * is indistinguishable from honest newcomers and could hold most of the weight by numbers alone.
 *
 * Nor is a tally given up on an answer that only suspension silenced (`decisiveSuspects`): when
 * it is undecided but would be decided if its suspended executors were cleared, those of them in
 * the leading class are retested first, and the tally waits for them. An honest agent suspended
 * for one slip is usually cleared by its retest; a liar just fails one more check.
 */
import { aggregate } from './aggregate.ts'
import { groupAnswers, type Embedder } from './equivalence.ts'
import type { ReputationBook, Standings } from './reputation.ts'
import type { AnswerBody, EquivalenceRule, Json } from './types.ts'

export interface CanaryPolicy {
  /** Share of dispatches followed by a canary, 0..1. */
  rate: number
  /** Canaries judged before an agent is checked only at `rate` (default 2, or 0 when `rate` is 0: off means off). */
  newcomerChecks?: number
  /** A canary to every executor of a trusted subtask whose executors disagreed (default true, false when `rate` is 0). */
  onDissent?: boolean
  /** Executors of a trusted subtask without a judged canary get one before the tally (default true, false when `rate` is 0). */
  qualify?: boolean
}

/** The defaults a peer runs with when its config says nothing: on, at 5%, every newcomer twice, and on dissent. */
export const defaultCanaryPolicy: Readonly<Required<CanaryPolicy>> = { rate: 0.05, newcomerChecks: 2, onDissent: true, qualify: true }

export type CanaryReason = 'dispatch' | 'dissent' | 'qualify' | 'retest'

/** Whether this agent has a judged canary (an answer that was compared with the known one). */
export function judged (book: ReputationBook, agent: string): boolean {
  const c = book.counts(agent)
  return c.canaryPassed + c.canaryFailed > 0
}

/** More canaries failed than passed. */
export function discredited (book: ReputationBook, agent: string): boolean {
  const c = book.counts(agent)
  return c.canaryFailed > c.canaryPassed
}

/** Executors a requester must check before it aggregates their answers (see `qualify`). */
export function unqualified (policy: CanaryPolicy, book: ReputationBook, agents: readonly string[]): string[] {
  if (!(policy.qualify ?? policy.rate > 0)) return []
  return [...new Set(agents)].filter(a => !judged(book, a))
}

/**
 * Whether to follow a dispatch to `agent` with a canary. At most one is in flight per agent
 * (`inFlight`: the caller's count), so an agent that never answers canaries — not answering is
 * not judged — cannot double the calls it gets by staying a newcomer.
 */
export function wantsCanary (policy: CanaryPolicy, book: ReputationBook, agent: string, random: () => number, inFlight = 0, why: CanaryReason = 'dispatch'): boolean {
  if (inFlight > 0) return false
  // An agent already failing more checks than it passes carries no weight: re-checking it on every
  // split would only spend calls (the random rate still gives it a way back).
  if (why === 'dissent') return (policy.onDissent ?? policy.rate > 0) && !discredited(book, agent)
  if (why === 'qualify') return (policy.qualify ?? policy.rate > 0) && !judged(book, agent)
  if (why === 'retest') return policy.onDissent ?? policy.rate > 0
  const c = book.counts(agent)
  if (c.canaryPassed + c.canaryFailed < (policy.newcomerChecks ?? (policy.rate > 0 ? 2 : 0))) return true
  return policy.rate > 0 && random() < policy.rate
}

/** Whether an agent's answer to a canary matches the known answer under `rule`. */
export function canaryPassed (known: Json, got: unknown, rule: EquivalenceRule = { kind: 'json' }): boolean {
  return groupAnswers([{ agent: 'truth/known', answer: known }, { agent: 'agent/answer', answer: (got ?? null) as Json }], rule).length === 1
}

/**
 * Guilt by agreement: who recently stood in the same committed class as whom. When an agent fails
 * a canary, the agents that agreed with it lately are checked next (as on dissent): a colluding
 * group agrees with itself, so one member caught points at the rest, and a majority of sleepers
 * that commits unanimously (no dissent to trigger a check) is unwound within a few tasks instead
 * of waiting for each member's own random canary. Bounded: `perAgent` partners per agent, and
 * `agents` agents (the least recently noted forgotten first).
 */
export class Cohorts {
  readonly #partners = new Map<string, string[]>()
  readonly #perAgent: number
  readonly #agents: number

  constructor (perAgent = 16, agents = 10_000) {
    this.#perAgent = perAgent
    this.#agents = agents
  }

  /** The supporters of one committed class. */
  note (agreed: readonly string[]): void {
    const group = [...new Set(agreed)]
    if (group.length < 2) return
    for (const a of group) {
      const list = (this.#partners.get(a) ?? []).filter(p => !group.includes(p))
      for (const p of group) if (p !== a) list.push(p)
      this.#partners.delete(a)
      this.#partners.set(a, list.slice(-this.#perAgent))
      if (this.#partners.size > this.#agents) this.#partners.delete(this.#partners.keys().next().value!)
    }
  }

  /** The recent partners of an agent that just failed a check (forgotten once taken). */
  take (agent: string): string[] {
    const list = this.#partners.get(agent) ?? []
    this.#partners.delete(agent)
    return list
  }
}

/** When a suspended agent is checked again: at once after the failure that suspends, then after
 * `firstMs`, doubling with each further retest, at most `maxMs` (see `Suspects`). */
export const RETEST_BACKOFF = { firstMs: 30_000, maxMs: 3_600_000 }

/**
 * Suspension: an agent whose latest canary failed carries no weight (reputation 0 in the view)
 * until it passes one. Routing puts suspended agents last, so a suspended agent gets no dispatch
 * and hence no ordinary canary: it is retested instead, at once after the failure that suspends
 * it, then after a backoff that doubles with each retest sent (`retestAt`), whatever became of the
 * last one (a wrong answer, an error, no answer: an agent that errs on its retest would otherwise
 * stay out for good). A liar costs a canary per doubling of time, never a loop; an honest agent
 * that slipped twice in a row is back within a minute. A sleeper that turned fails its retests and
 * stays out, whatever standing it banked while honest (that banked standing is what let a
 * majority of sleepers commit unanimously until each had failed a dozen random canaries).
 * This requester's own knowledge, like canaries: not gossiped, not saved (a restart forgives).
 */
export class Suspects {
  /** Suspended agents: retests sent since the suspension, and whether one is scheduled. */
  readonly #suspended = new Map<string, { retests: number, scheduled: boolean }>()
  readonly #max: number

  constructor (max = 100_000) {
    this.#max = max
  }

  /**
   * A canary was judged; true when this suspends the agent. A wrong answer the agent itself
   * reported as unsure (confidence below 0.5) is honest uncertainty, not a lie: it does not
   * suspend (calibration learns from it).
   */
  judged (agent: string, correct: boolean, confidence?: number | null): boolean {
    if (correct) {
      this.#suspended.delete(agent)
      return false
    }
    if ((typeof confidence === 'number' && confidence < 0.5) || this.#suspended.has(agent) || this.#suspended.size >= this.#max) return false
    this.#suspended.set(agent, { retests: 0, scheduled: false })
    return true
  }

  /**
   * After any canary to `agent` ended (judged or not): when, on the caller's clock (ms), to
   * retest it, or undefined when it is not suspended or a retest is already scheduled (one at a
   * time). The first retest is at once; the k-th after `firstMs` · 2^(k−2), at most `maxMs`.
   */
  retestAt (agent: string, now: number): number | undefined {
    const s = this.#suspended.get(agent)
    if (s === undefined || s.scheduled) return undefined
    s.scheduled = true
    return now + (s.retests === 0 ? 0 : Math.min(RETEST_BACKOFF.maxMs, RETEST_BACKOFF.firstMs * 2 ** Math.min(30, s.retests - 1)))
  }

  /** A scheduled retest is due: true if the agent is still suspended (then send the canary; it counts as sent). */
  retestDue (agent: string): boolean {
    const s = this.#suspended.get(agent)
    if (s === undefined) return false
    s.scheduled = false
    s.retests++
    return true
  }

  has (agent: string): boolean {
    return this.#suspended.has(agent)
  }

  /** The suspended agents, oldest suspension first, at most `limit`. */
  list (limit = Infinity): string[] {
    const out: string[] = []
    for (const agent of this.#suspended.keys()) {
      if (out.length >= limit) break
      out.push(agent)
    }
    return out
  }

  /** The book as aggregation and committees should read it: suspended agents at reputation 0. */
  view (book: Standings): Standings {
    return {
      standing: agent => this.#suspended.has(agent) ? { ...book.standing(agent), reputation: 0 } : book.standing(agent),
      hostReputation: host => book.hostReputation(host)
    }
  }
}

/**
 * The suspended executors worth a retest before an undecided tally is given up: `standings` is
 * how tallies read the book (suspended agents at 0), `cleared` the book without suspension. If
 * the tally is undecided as read, but decided once every suspended executor is cleared, the
 * suspended supporters of the class that would win; otherwise none. An agent the book itself
 * discredits (a liar caught many times) stays below the standing a vote needs when cleared, so
 * it is never worth a retest here.
 */
export function decisiveSuspects (answers: readonly AnswerBody[], rule: EquivalenceRule, standings: Standings, cleared: Standings,
  suspended: (agent: string) => boolean, embed?: Embedder): string[] {
  const held = [...new Set(answers.map(a => a.agent))].filter(suspended)
  if (held.length === 0) return []
  if (aggregate(answers, rule, a => standings.standing(a), {}, embed).kind === 'decided') return []
  const verdict = aggregate(answers, rule, a => cleared.standing(a), {}, embed)
  if (verdict.kind !== 'decided') return []
  const winners = new Set(verdict.classes[0]!.agents)
  return held.filter(a => winners.has(a))
}
