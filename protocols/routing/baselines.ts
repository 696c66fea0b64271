/**
 * Baseline selection policies, behind the same Learner interface as LinUCB so the simulator can
 * compare them side by side: random, round-robin, greedy-similarity and epsilon-greedy.
 * Symphony-Coord's selector is in symphony.ts.
 */
import type { CandidateState, TaskFeatures } from './context.ts'
import { count, finite, list, record, StateError, text } from './persist.ts'
import { pickBest, type Choice, type Learner, type ResolvedConfig, type Score } from './policy.ts'

const NO_CONTEXT = new Float64Array(0)

function flat (candidates: readonly CandidateState[], value: (c: CandidateState) => number): Score[] {
  return candidates.map(c => { const v = value(c); return { agent: c.agent, mean: v, bonus: 0, score: v } })
}

/** Uniformly at random; learns nothing. */
export class RandomLearner implements Learner {
  readonly contextLength = 0
  choose (candidates: readonly CandidateState[], _task: TaskFeatures, rng: () => number): Choice {
    const index = Math.min(candidates.length - 1, Math.floor(rng() * candidates.length))
    return { index, context: NO_CONTEXT, scores: flat(candidates, () => 0) }
  }

  learn (): void {}
  adjust (): void {}
  toJSON (): unknown { return {} }
}

/**
 * Each agent in turn: the next agent id after the last one chosen, in sorted order (wrapping), so
 * the rotation survives candidate sets that change between decisions.
 */
export class RoundRobinLearner implements Learner {
  readonly contextLength = 0
  #last: string | undefined

  constructor (last?: string) {
    this.#last = last
  }

  choose (candidates: readonly CandidateState[]): Choice {
    const choice = this.preview(candidates)
    this.#last = candidates[choice.index]!.agent
    return choice
  }

  /** The next agent in turn, without taking the turn. */
  preview (candidates: readonly CandidateState[]): Choice {
    let next = -1
    let first = 0
    for (let i = 0; i < candidates.length; i++) {
      const a = candidates[i]!.agent
      if (a < candidates[first]!.agent) first = i
      if (this.#last !== undefined && a > this.#last && (next < 0 || a < candidates[next]!.agent)) next = i
    }
    const index = next >= 0 ? next : first
    return { index, context: NO_CONTEXT, scores: flat(candidates, () => 0) }
  }

  learn (): void {}
  adjust (): void {}
  toJSON (): unknown { return this.#last === undefined ? {} : { last: this.#last } }

  static fromJSON (json: unknown): RoundRobinLearner {
    const s = record(json, 'model')
    return new RoundRobinLearner(s.last === undefined ? undefined : text(s.last, 'model.last'))
  }
}

/** The most similar candidate (the semantic index's first answer); learns nothing. */
export class GreedySimilarityLearner implements Learner {
  readonly contextLength = 0
  choose (candidates: readonly CandidateState[], _task: TaskFeatures, rng: () => number): Choice {
    const scores = flat(candidates, c => c.similarity)
    return { index: pickBest(scores, rng), context: NO_CONTEXT, scores }
  }

  learn (): void {}
  adjust (): void {}
  toJSON (): unknown { return {} }
}

interface Mean { sum: number, n: number, lastUpdate: number }

/**
 * With probability epsilon a uniformly random candidate, else the best running mean reward per
 * agent. An agent never rewarded has mean 0. Context-free: the baseline a contextual bandit must beat.
 */
export class EpsilonGreedyLearner implements Learner {
  readonly contextLength = 0
  readonly #epsilon: number
  readonly #maxAgents: number
  readonly #means = new Map<string, Mean>()
  #updates = 0

  constructor (config: ResolvedConfig) {
    this.#epsilon = config.epsilon
    this.#maxAgents = config.maxAgents
  }

  mean (agent: string): number {
    const m = this.#means.get(agent)
    return m === undefined || m.n === 0 ? 0 : m.sum / m.n
  }

  choose (candidates: readonly CandidateState[], _task: TaskFeatures, rng: () => number): Choice {
    const scores = flat(candidates, c => this.mean(c.agent))
    const index = rng() < this.#epsilon
      ? Math.min(candidates.length - 1, Math.floor(rng() * candidates.length))
      : pickBest(scores, rng)
    return { index, context: NO_CONTEXT, scores }
  }

  learn (agent: string, _context: Float64Array, _offset: number, reward: number): void {
    let m = this.#means.get(agent)
    if (m === undefined) {
      if (this.#means.size >= this.#maxAgents) this.#dropLeastRecent()
      m = { sum: 0, n: 0, lastUpdate: 0 }
      this.#means.set(agent, m)
    }
    m.sum += reward
    m.n++
    m.lastUpdate = ++this.#updates
  }

  adjust (agent: string, _context: Float64Array, _offset: number, delta: number): void {
    const m = this.#means.get(agent)
    if (m !== undefined) m.sum += delta
  }

  toJSON (): unknown {
    return { updates: this.#updates, agents: [...this.#means].map(([agent, m]) => ({ agent, sum: m.sum, n: m.n, lastUpdate: m.lastUpdate })) }
  }

  static fromJSON (config: ResolvedConfig, json: unknown): EpsilonGreedyLearner {
    const s = record(json, 'model')
    const l = new EpsilonGreedyLearner(config)
    l.#updates = count(s.updates, 'model.updates')
    list(s.agents, 'model.agents').forEach((raw, i) => {
      const a = record(raw, `model.agents[${i}]`)
      const agent = text(a.agent, `model.agents[${i}].agent`)
      if (l.#means.has(agent)) throw new StateError(`model.agents[${i}]: agent ${agent} appears twice`)
      l.#means.set(agent, { sum: finite(a.sum, `model.agents[${i}].sum`), n: count(a.n, `model.agents[${i}].n`), lastUpdate: count(a.lastUpdate, `model.agents[${i}].lastUpdate`) })
    })
    return l
  }

  #dropLeastRecent (): void {
    let oldest: string | undefined
    let at = Infinity
    for (const [agent, m] of this.#means) if (m.lastUpdate < at) { at = m.lastUpdate; oldest = agent }
    if (oldest !== undefined) this.#means.delete(oldest)
  }
}
