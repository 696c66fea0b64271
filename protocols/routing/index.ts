/**
 * Routing, stage 2: selection. Given the candidates the semantic index screened for a task, pick
 * the agent to dispatch to with hybrid LinUCB (shared + per-agent coefficients, so a new agent is
 * scored from its first beacon), learn from each dispatch's reward when it arrives, and keep the
 * bandit state across restarts. Baselines (random, round-robin, greedy-similarity,
 * epsilon-greedy, Symphony-Coord's selector) share the interface so they can be compared.
 *
 * @example
 * ```ts
 * const policy = createPolicy('linucb', { alpha: 1, lambda: 1, rewardWeights: { latency: 0.5 } })
 * const candidates: CandidateState[] = [
 *   { agent: `${peerA}/calc`, similarity: 0.92, load: 0.1, latencyMs: 40, cost: 0.5, reputation: 0.9, available: true },
 *   { agent: `${peerB}/calc`, similarity: 0.88, load: 0.7, latencyMs: 15, cost: 0.2, reputation: 0.6, available: true }
 * ]
 * const { chosen, scores } = policy.select(candidates, { taskType: 'arithmetic' }, rng, { id: 'task-17/0', now })
 * for (const s of scores) console.log(s.agent, 'UCB mean', s.mean, 'bonus', s.bonus)
 * // … the agent answers:
 * policy.feedback('task-17/0', { success: true, latencyMs: 52, cost: 0.5 }, now)     // { status: 'learned', reward }
 * // … consensus commits a result later:
 * policy.feedback('task-17/0', { agreement: 1 }, now)                                // adds w.agreement · 1 to that reward
 * // persistence: JSON-safe, exact round trip, dimensions checked on load
 * const saved = JSON.stringify(policy.toJSON())
 * const again = restorePolicy(JSON.parse(saved))
 * ```
 */
export { createPolicy, restorePolicy, isPolicyName } from './registry.ts'
export { POLICY_NAMES, resolveConfig, STATE_FORMAT, STATE_VERSION } from './policy.ts'
export type {
  Dispatch, FeedbackResult, PolicyConfig, PolicyName, PolicyState, ResolvedConfig, Score, Selection, SelectionPolicy
} from './policy.ts'
export type { CandidateState, ContextConfig, TaskFeatures } from './context.ts'
export {
  defaultContextConfig, normaliseCost, normaliseLatency, perAgentDims, sharedDims, SYMPHONY_DIMS, taskBucket,
  writePerAgent, writeShared, Z
} from './context.ts'
export type { LateAgreement, Outcome, RewardWeights } from './reward.ts'
export { agreementReward, answerReward, defaultRewardWeights } from './reward.ts'
export { CHANGE_REPLAY, defaultChangeDetection, HybridLinUCB } from './linucb.ts'
export type { ChangeDetection, HybridOptions, HybridState, LinUCBOptions, UcbScore } from './linucb.ts'
export { GlobalLinUCB } from './global-linucb.ts'
export { SYMPHONY, SymphonyLearner, symphonyBeta, symphonyLatency, symphonyScreenScore, symphonySimilarity, writeSymphonyContext } from './symphony.ts'
export type { GlobalState } from './global-linucb.ts'
export { StateError } from './persist.ts'
export { RoutingCore } from './router.ts'
export type { BeaconState, RouteDecision, RoutingCoreInit, ScreenHit } from './router.ts'
export { routeRequest, screen } from './route-driver.ts'
export type { IndexSearch, LiveStates, RouteIo, ScreenRequest } from './route-driver.ts'
