/**
 * Selection policies by name, and policies restored from saved state.
 */
import { EpsilonGreedyLearner, GreedySimilarityLearner, RandomLearner, RoundRobinLearner } from './baselines.ts'
import { SymphonyLearner } from './symphony.ts'
import { LinUCBLearner } from './linucb-policy.ts'
import { PendingBook } from './pending.ts'
import { record, StateError } from './persist.ts'
import {
  Policy, POLICY_NAMES, resolveConfig, STATE_FORMAT, STATE_VERSION,
  type Learner, type PolicyConfig, type PolicyName, type ResolvedConfig, type SelectionPolicy
} from './policy.ts'

interface Entry {
  create: (config: ResolvedConfig) => Learner
  restore: (config: ResolvedConfig, model: unknown) => Learner
}

const learners: Record<PolicyName, Entry> = {
  linucb: { create: c => new LinUCBLearner(c), restore: (c, m) => LinUCBLearner.fromJSON(c, m) },
  symphony: { create: c => new SymphonyLearner(c), restore: (c, m) => SymphonyLearner.fromJSON(c, m) },
  'epsilon-greedy': { create: c => new EpsilonGreedyLearner(c), restore: (c, m) => EpsilonGreedyLearner.fromJSON(c, m) },
  'greedy-similarity': { create: () => new GreedySimilarityLearner(), restore: () => new GreedySimilarityLearner() },
  'round-robin': { create: () => new RoundRobinLearner(), restore: (_c, m) => RoundRobinLearner.fromJSON(m) },
  random: { create: () => new RandomLearner(), restore: () => new RandomLearner() }
}

export function isPolicyName (name: string): name is PolicyName {
  return (POLICY_NAMES as readonly string[]).includes(name)
}

/** A fresh policy by name; throws listing the known names for any other. */
export function createPolicy (name: string, config: PolicyConfig = {}): SelectionPolicy {
  if (!isPolicyName(name)) throw new RangeError(`unknown selection policy "${name}"; known policies: ${POLICY_NAMES.join(', ')}`)
  const resolved = resolveConfig(name, config)
  return new Policy(name, resolved, learners[name].create(resolved))
}

/**
 * A policy from `toJSON()` output (after JSON.stringify/parse too). With `config`, the restored
 * policy runs under it (exploration, reward weights, limits may change across a restart), but the
 * dimensions and λ it implies must match the saved model's, or this throws a StateError saying which.
 */
export function restorePolicy (state: unknown, config?: PolicyConfig): SelectionPolicy {
  const s = record(state, 'policy state')
  if (s.format !== STATE_FORMAT) throw new StateError(`not a saved routing policy (format ${JSON.stringify(s.format)}, expected "${STATE_FORMAT}")`)
  if (s.version !== STATE_VERSION) throw new StateError(`saved routing policy has version ${JSON.stringify(s.version)}; this build reads version ${STATE_VERSION}`)
  const name = s.policy
  if (typeof name !== 'string' || !isPolicyName(name)) throw new StateError(`saved routing policy names unknown policy ${JSON.stringify(name)}; known policies: ${POLICY_NAMES.join(', ')}`)
  let resolved: ResolvedConfig
  if (config !== undefined) {
    resolved = resolveConfig(name, config)
  } else {
    try {
      resolved = resolveConfig(name, record(s.config, 'config') as PolicyConfig)
    } catch (err) {
      throw err instanceof RangeError ? new StateError(`saved ${err.message}`) : err
    }
  }
  const learner = learners[name].restore(resolved, s.model)
  const book = PendingBook.fromJSON(s.pending, learner.contextLength, resolved.maxPending, resolved.pendingTtlMs)
  return new Policy(name, resolved, learner, book)
}
