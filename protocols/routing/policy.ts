/**
 * One interface for every selection policy (LinUCB and the baselines), so the router and the
 * simulator can swap them by name, and the delayed-feedback bookkeeping they all share.
 *
 * Delayed feedback: `select` with a dispatch id records a pending entry (id → agent and the context
 * it was scored in). `feedback(id, outcome)` turns the answer (success, latency, cost) into a reward
 * and updates the model then. Consensus agreement may come with the answer or later, as
 * `feedback(id, { agreement })`; either way it is one more term of the same observation's reward
 * (see reward.ts): arriving after the answer it adjusts that reward by w.agreement · agreement
 * (the model's b vectors only, no second observation); arriving before, it is held and folded into
 * the answer's reward. Both orders give the same model. An entry leaves once it has both, or when
 * it expires (older than `pendingTtlMs` at a `now` the caller passes, or beyond `maxPending`).
 */
import { candidateProblem, defaultContextConfig, type CandidateState, type ContextConfig, type TaskFeatures } from './context.ts'
import { defaultChangeDetection, type ChangeDetection } from './linucb.ts'
import { PendingBook, type PendingJson } from './pending.ts'
import { agreementReward, answerReward, defaultRewardWeights, isOutcome, outcomeProblem, type LateAgreement, type Outcome, type RewardWeights } from './reward.ts'

export const POLICY_NAMES = ['linucb', 'symphony', 'epsilon-greedy', 'greedy-similarity', 'round-robin', 'random'] as const
export type PolicyName = typeof POLICY_NAMES[number]

/** One candidate's score. UCB policies: score = mean + bonus; the others: bonus 0. */
export interface Score {
  agent: string
  mean: number
  bonus: number
  score: number
}

export interface Selection {
  /** The caller's dispatch id, when one was given (then a pending entry waits for feedback). */
  dispatchId?: string
  chosen: string
  /** The candidates the policy considered, in the order given (symphony: its top-L screen, most similar first). */
  scores: Score[]
}

/** Identifies a dispatch for delayed feedback. Ids come from the caller and must be unique. */
export interface Dispatch {
  id: string
  /** The caller's clock (ms): pending entries expire relative to it. */
  now: number
}

export type FeedbackResult =
  /** The model learned: the answer's reward (agreement included if known), or the agreement's increment. */
  | { status: 'learned', reward: number }
  /** Agreement came before the answer: held, and added to the answer's reward when it comes. */
  | { status: 'held' }
  | { status: 'ignored', reason: string }

export interface SelectionPolicy {
  readonly name: PolicyName
  readonly config: Readonly<ResolvedConfig>
  /** Dispatches waiting for feedback. */
  readonly pending: number
  /** Picks one candidate. All randomness comes from `rng` (uniform in [0, 1)). */
  select (candidates: readonly CandidateState[], task: TaskFeatures, rng: () => number, dispatch?: Dispatch): Selection
  /** The policy's own screening, when it has one (Symphony-Coord): indices into `candidates`, best first; undefined otherwise. */
  screen (candidates: readonly CandidateState[], task: TaskFeatures): number[] | undefined
  /** What `select` would pick now, changing nothing: no pending dispatch, no rotation advanced (a dashboard's "why"). */
  preview (candidates: readonly CandidateState[], task: TaskFeatures, rng: () => number): Selection
  /** A report on a dispatch: the answer, or a late agreement. `now` (ms) expires old entries first. */
  feedback (dispatchId: string, outcome: Outcome | LateAgreement, now?: number): FeedbackResult
  /**
   * An outcome of an agent the policy did not choose (a fallback, a redundant copy), in the state
   * it was scored in: one more observation, learned at once (policies that learn nothing ignore it).
   */
  observe (candidate: CandidateState, task: TaskFeatures, outcome: Outcome): FeedbackResult
  /** A pending dispatch that must teach nothing (the requester's input was at fault); false if unknown. */
  withdraw (dispatchId: string, reason: string): boolean
  /** Drops pending entries older than `pendingTtlMs`; returns how many. */
  expire (now: number): number
  /** Everything needed to continue after a restart (see `restorePolicy`). */
  toJSON (): PolicyState
}

export interface PolicyConfig {
  /**
   * Exploration weight of the UCB bonus. LinUCB's default is 0.5: on `shock-fail` (120 seeds)
   * its regret from the shock was 0.34× Symphony-Coord's at 1 and 0.26× at 0.5, and quickstart,
   * shock-recovery and churn (6 seeds each) lost less regret too. Symphony-Coord: the α of its
   * β_t, default 1 as published.
   */
  alpha?: number
  /** Ridge regularisation λ (default 1). */
  lambda?: number
  /** Symphony-Coord's confidence δ in its β_t (default 0.05). */
  delta?: number
  /** Symphony-Coord's screen: the L most similar candidates (default 3). */
  topL?: number
  /** epsilon-greedy's exploration probability (default 0.1). */
  epsilon?: number
  rewardWeights?: Partial<RewardWeights>
  context?: Partial<ContextConfig>
  /** Dispatches awaiting feedback at most (default 10 000). */
  maxPending?: number
  /** A pending dispatch expires this long after it was made (default 10 min). */
  pendingTtlMs?: number
  /** Agents with their own learned state at most (default 10 000; LinUCB folds the least recent into β). */
  maxAgents?: number
  /** Re-derive an inverse from its matrix every this many rank-1 updates (default 1000; 0: never). */
  refreshEvery?: number
  /** LinUCB's per-agent change detection (linucb.ts `ChangeDetection`); false: never forget. */
  changeDetection?: Partial<ChangeDetection> | false
}

export interface ResolvedConfig {
  alpha: number
  lambda: number
  delta: number
  topL: number
  epsilon: number
  rewardWeights: RewardWeights
  context: ContextConfig
  maxPending: number
  pendingTtlMs: number
  maxAgents: number
  refreshEvery: number
  changeDetection: ChangeDetection | false
}

export const STATE_FORMAT = 'agentmesh/routing-policy'
export const STATE_VERSION = 1

export interface PolicyState {
  format: typeof STATE_FORMAT
  version: typeof STATE_VERSION
  policy: PolicyName
  config: ResolvedConfig
  /** The learner's own state (LinUCB: matrices as number[]). */
  model: unknown
  pending: PendingJson[]
}

/** LinUCB's default exploration weight (see `PolicyConfig.alpha`). */
export const LINUCB_ALPHA = 0.5

export function resolveConfig (name: PolicyName, config: PolicyConfig = {}): ResolvedConfig {
  const delta = config.delta ?? 0.05
  const resolved: ResolvedConfig = {
    alpha: config.alpha ?? (name === 'linucb' ? LINUCB_ALPHA : 1),
    lambda: config.lambda ?? 1,
    delta,
    topL: config.topL ?? 3,
    epsilon: config.epsilon ?? 0.1,
    rewardWeights: { ...defaultRewardWeights, ...config.rewardWeights },
    context: { ...defaultContextConfig, ...config.context },
    maxPending: config.maxPending ?? 10_000,
    pendingTtlMs: config.pendingTtlMs ?? 10 * 60_000,
    maxAgents: config.maxAgents ?? 10_000,
    refreshEvery: config.refreshEvery ?? 1000,
    changeDetection: config.changeDetection === false ? false : { ...defaultChangeDetection, ...config.changeDetection }
  }
  const problem = configProblem(resolved)
  if (problem !== undefined) throw new RangeError(`routing config: ${problem}`)
  return resolved
}

function configProblem (c: ResolvedConfig): string | undefined {
  const finite = (v: number): boolean => Number.isFinite(v)
  const int = (v: number, min: number): boolean => Number.isSafeInteger(v) && v >= min
  if (!(finite(c.alpha) && c.alpha >= 0)) return 'alpha must be a finite number >= 0'
  if (!(finite(c.lambda) && c.lambda > 0)) return 'lambda must be a finite number > 0'
  if (!(c.delta > 0 && c.delta < 1)) return 'delta must be in (0, 1)'
  if (!int(c.topL, 1)) return 'topL must be an integer >= 1'
  if (!(c.epsilon >= 0 && c.epsilon <= 1)) return 'epsilon must be in [0, 1]'
  for (const [k, v] of Object.entries(c.rewardWeights)) if (!finite(v)) return `rewardWeights.${k} must be a finite number`
  if (!(finite(c.context.latencyScaleMs) && c.context.latencyScaleMs > 0)) return 'context.latencyScaleMs must be > 0'
  if (!(finite(c.context.costScale) && c.context.costScale > 0)) return 'context.costScale must be > 0'
  if (!(int(c.context.taskBuckets, 1) && c.context.taskBuckets <= 64)) return 'context.taskBuckets must be an integer in 1..64'
  if (!int(c.maxPending, 1)) return 'maxPending must be an integer >= 1'
  if (!(finite(c.pendingTtlMs) && c.pendingTtlMs > 0)) return 'pendingTtlMs must be > 0'
  if (!int(c.maxAgents, 1)) return 'maxAgents must be an integer >= 1'
  if (!int(c.refreshEvery, 0)) return 'refreshEvery must be an integer >= 0'
  if (c.changeDetection !== false) {
    const d = c.changeDetection
    if (typeof d !== 'object' || d === null) return 'changeDetection must be false or { threshold, minUpdates }'
    if (!(finite(d.threshold) && d.threshold > 0)) return 'changeDetection.threshold must be a finite number > 0'
    if (!int(d.minUpdates, 0)) return 'changeDetection.minUpdates must be an integer >= 0'
  }
  return undefined
}

/** What a learner returns for one decision: the chosen index and the context to learn from later. */
export interface Choice {
  index: number
  /** The chosen candidate's context (`contextLength` numbers). May be the learner's scratch: copy it before the next `choose`. */
  context: Float64Array
  scores: Score[]
}

/** The policy-specific part: how to score, and how to learn from a reward. */
export interface Learner {
  /** Length of the context arrays this learner stores per dispatch. */
  readonly contextLength: number
  choose (candidates: readonly CandidateState[], task: TaskFeatures, rng: () => number): Choice
  /** A policy's own screen (Symphony-Coord's): indices of the candidates worth a beacon, best first. */
  screen? (candidates: readonly CandidateState[], task: TaskFeatures): number[]
  /** `choose` without changing any state; only learners whose `choose` does (round-robin) need it. */
  preview? (candidates: readonly CandidateState[], task: TaskFeatures, rng: () => number): Choice
  /** A new observation: `agent` in the context at `context[offset…]` earned `reward` (`success`: whether it answered). */
  learn (agent: string, context: Float64Array, offset: number, reward: number, success?: boolean): void
  /** A past observation's reward grows by `delta` (not a new observation). */
  adjust (agent: string, context: Float64Array, offset: number, delta: number): void
  toJSON (): unknown
}

/** The highest score (ties broken uniformly with rng, so input order carries no bias). */
export function pickBest (scores: readonly Score[], rng: () => number): number {
  let best = -Infinity
  let ties = 0
  for (const s of scores) {
    if (s.score > best) { best = s.score; ties = 1 } else if (s.score === best) ties++
  }
  let pick = ties > 1 ? Math.min(ties - 1, Math.floor(rng() * ties)) : 0
  for (let i = 0; i < scores.length; i++) {
    if (scores[i]!.score === best && pick-- === 0) return i
  }
  return 0
}

/** A learner plus the shared delayed-feedback bookkeeping. */
export class Policy implements SelectionPolicy {
  readonly name: PolicyName
  readonly config: Readonly<ResolvedConfig>
  readonly #learner: Learner
  readonly #book: PendingBook

  constructor (name: PolicyName, config: ResolvedConfig, learner: Learner, book?: PendingBook) {
    this.name = name
    this.config = config
    this.#learner = learner
    this.#book = book ?? new PendingBook(learner.contextLength, config.maxPending, config.pendingTtlMs)
  }

  get pending (): number { return this.#book.size }

  select (candidates: readonly CandidateState[], task: TaskFeatures, rng: () => number, dispatch?: Dispatch): Selection {
    checkCandidates(candidates)
    // A dispatch id already pending makes `add` throw below: the decision is then discarded.
    if (dispatch !== undefined) this.#book.expire(dispatch.now)
    const choice = this.#learner.choose(candidates, task, rng)
    const chosen = candidates[choice.index]!.agent
    if (dispatch === undefined) return { chosen, scores: choice.scores }
    this.#book.add(dispatch.id, chosen, dispatch.now, choice.context, 0)
    return { dispatchId: dispatch.id, chosen, scores: choice.scores }
  }

  screen (candidates: readonly CandidateState[], task: TaskFeatures): number[] | undefined {
    if (this.#learner.screen === undefined) return undefined
    checkCandidates(candidates)
    return this.#learner.screen(candidates, task)
  }

  preview (candidates: readonly CandidateState[], task: TaskFeatures, rng: () => number): Selection {
    checkCandidates(candidates)
    const learner = this.#learner
    const choice = learner.preview !== undefined ? learner.preview(candidates, task, rng) : learner.choose(candidates, task, rng)
    return { chosen: candidates[choice.index]!.agent, scores: choice.scores }
  }

  feedback (dispatchId: string, outcome: Outcome | LateAgreement, now?: number): FeedbackResult {
    const problem = outcomeProblem(outcome)
    if (problem !== undefined) return { status: 'ignored', reason: `invalid outcome: ${problem}` }
    if (now !== undefined) this.#book.expire(now)
    const book = this.#book
    const entry = book.get(dispatchId)
    if (entry === undefined) return { status: 'ignored', reason: book.why(dispatchId) }
    const w = this.config.rewardWeights
    if (isOutcome(outcome)) {
      if (entry.answered) return { status: 'ignored', reason: 'answer already received' }
      // An agreement already held wins over one repeated in the answer.
      const agreement = entry.agreement ?? outcome.agreement
      const reward = answerReward(outcome, w, this.config.context) + (agreement !== undefined ? agreementReward(agreement, w) : 0)
      this.#learner.learn(entry.agent, book.contexts, entry.slot * book.width, reward, outcome.success)
      entry.answered = true
      entry.agreement = agreement
      if (agreement !== undefined) book.complete(dispatchId, entry)
      return { status: 'learned', reward }
    }
    if (entry.agreement !== undefined) return { status: 'ignored', reason: 'agreement already received' }
    entry.agreement = outcome.agreement
    if (!entry.answered) return { status: 'held' }
    const delta = agreementReward(outcome.agreement, w)
    this.#learner.adjust(entry.agent, book.contexts, entry.slot * book.width, delta)
    book.complete(dispatchId, entry)
    return { status: 'learned', reward: delta }
  }

  observe (candidate: CandidateState, task: TaskFeatures, outcome: Outcome): FeedbackResult {
    const problem = outcomeProblem(outcome) ?? candidateProblem(candidate)
    if (problem !== undefined) return { status: 'ignored', reason: `invalid observation: ${problem}` }
    const learner = this.#learner
    // The context the agent would have been chosen in; a preview changes no state.
    const choice = learner.preview !== undefined ? learner.preview([candidate], task, () => 0) : learner.choose([candidate], task, () => 0)
    const reward = answerReward(outcome, this.config.rewardWeights, this.config.context)
    learner.learn(candidate.agent, choice.context, 0, reward, outcome.success)
    return { status: 'learned', reward }
  }

  withdraw (dispatchId: string, reason: string): boolean {
    return this.#book.withdraw(dispatchId, `withdrawn: ${reason}`)
  }

  expire (now: number): number {
    return this.#book.expire(now)
  }

  toJSON (): PolicyState {
    return {
      format: STATE_FORMAT,
      version: STATE_VERSION,
      policy: this.name,
      config: { ...this.config, rewardWeights: { ...this.config.rewardWeights }, context: { ...this.config.context }, changeDetection: this.config.changeDetection === false ? false : { ...this.config.changeDetection } },
      model: this.#learner.toJSON(),
      pending: this.#book.toJSON()
    }
  }
}

function checkCandidates (candidates: readonly CandidateState[]): void {
  if (candidates.length === 0) throw new RangeError('select needs at least one candidate')
  for (const c of candidates) {
    const problem = candidateProblem(c)
    if (problem !== undefined) throw new RangeError(problem)
  }
}
