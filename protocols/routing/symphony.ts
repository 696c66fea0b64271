/**
 * Symphony-Coord's selector, as its authors' code runs it (Guan et al. 2026, arXiv:2602.00966;
 * github.com/GradientHQ/symphony-coord, core/routing.py `select_topL`; core/linucb_selector.py
 * `build_x`, `GlobalLinUCB`, read from the first author's copy guanzhaoyang86-lab/symphony2.0 at
 * 2912d06, where the file is present; experiments/exp2/sim/exp2_sim.py for the per-agent dynamics
 * and the training reward). A baseline: the name means their rule, not ours.
 *
 * Screening: unavailable candidates are dropped; the rest are ranked by
 *   0.5·sim + 0.35·prior_success + 0.15·stability,  sim = (cos + 1)/2,
 *   stability = 0.4(1 − load) + 0.4(1 − lat_norm) + 0.2·avail,  lat_norm = min(1, latency_ms/2000)
 * (a stable sort, so equals keep their order) and the top L = 3 go on. Their orchestrator sets
 * rep = prior_success (routing.py: `"reputation": prior_success`); here both are the agent's
 * success EMA, rep ← 0.95·rep + 0.05·ok from 0.5 (exp2_sim.py's `step_dynamics_after_call`).
 *
 * Selection: ONE LinUCB over x = [1, match, load, lat_norm, rep, avail], x scaled to unit length
 * when ‖x‖ > 1 (always, with the constant 1); A = λI + Σxxᵀ, b = Σ r x shared by every agent, so
 * agents differ only by their context. UCB = θᵀx + β_t·√(xᵀA⁻¹x) with
 *   β_t = α·√(d·ln(1 + t/λ) + 2·ln(1/δ)) + √λ·S,  α = 1, δ = 0.05, S = 1, λ = 1, d = 6,
 * t the number of updates so far (at least 1). The first best in screening order wins a tie
 * (their strict `>`). Reward: success 0/1 (exp2's `used_reward`); no latency, cost or agreement.
 */
import { SYMPHONY_DIMS, type CandidateState, type TaskFeatures } from './context.ts'
import { GlobalLinUCB } from './global-linucb.ts'
import { finite, list, record, StateError, text } from './persist.ts'
import type { Choice, Learner, ResolvedConfig, Score } from './policy.ts'

/** Their constants (linucb_selector.py defaults, routing.py weights). */
export const SYMPHONY = {
  latencyScaleMs: 2000,
  delta: 0.05,
  S: 1,
  repStart: 0.5,
  repKeep: 0.95,
  screen: { sim: 0.5, prior: 0.35, stability: 0.15 },
  stability: { load: 0.4, latency: 0.4, available: 0.2 }
} as const

const clamp01 = (v: number): number => v < 0 ? 0 : v > 1 ? 1 : v

/** lat_norm = min(1, latency_ms / 2000). */
export function symphonyLatency (latencyMs: number): number {
  return clamp01((latencyMs > 0 ? latencyMs : 0) / SYMPHONY.latencyScaleMs)
}

/** sim = (cos + 1)/2; the index's similarity is a cosine (clamped at 0 by the router). */
export function symphonySimilarity (cosine: number): number {
  return clamp01((cosine + 1) / 2)
}

/** Their screening score: 0.5·sim + 0.35·prior_success + 0.15·stability, clipped to [0, 1]. */
export function symphonyScreenScore (c: CandidateState, priorSuccess: number): number {
  const w = SYMPHONY.stability
  const stability = w.load * (1 - clamp01(c.load)) + w.latency * (1 - symphonyLatency(c.latencyMs)) + w.available * (c.available ? 1 : 0)
  const s = SYMPHONY.screen
  return clamp01(s.sim * symphonySimilarity(c.similarity) + s.prior * clamp01(priorSuccess) + s.stability * stability)
}

/** x = [1, match, load, lat_norm, rep, avail], scaled to unit length when ‖x‖ > 1. */
export function writeSymphonyContext (c: CandidateState, rep: number, out: Float64Array, offset: number): void {
  const v = [1, clamp01(c.similarity), clamp01(c.load), symphonyLatency(c.latencyMs), clamp01(rep), c.available ? 1 : 0]
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0))
  for (let i = 0; i < SYMPHONY_DIMS; i++) out[offset + i] = norm > 1 ? v[i]! / norm : v[i]!
}

/** β_t = α·√(d·ln(1 + t/λ) + 2·ln(1/δ)) + √λ·S, t ≥ 1. */
export function symphonyBeta (updates: number, lambda: number, alpha = 1, delta: number = SYMPHONY.delta, S: number = SYMPHONY.S): number {
  const t = Math.max(1, updates)
  return alpha * Math.sqrt(SYMPHONY_DIMS * Math.log(1 + t / lambda) + 2 * Math.log(1 / delta)) + Math.sqrt(lambda) * S
}

export class SymphonyLearner implements Learner {
  readonly contextLength = SYMPHONY_DIMS
  readonly model: GlobalLinUCB
  readonly #config: ResolvedConfig
  /** Success EMA per agent (their `rep`), bounded by `maxAgents` (least recently updated dropped). */
  readonly #rep = new Map<string, number>()
  readonly #pair = new Float64Array(2)
  #xs = new Float64Array(16 * SYMPHONY_DIMS)

  constructor (config: ResolvedConfig, model = new GlobalLinUCB(SYMPHONY_DIMS, { alpha: 1, lambda: config.lambda, refreshEvery: config.refreshEvery })) {
    this.#config = config
    this.model = model
  }

  rep (agent: string): number {
    return this.#rep.get(agent) ?? SYMPHONY.repStart
  }

  /** Their screen: indices of the top L available candidates by the screening score, best first. */
  screen (candidates: readonly CandidateState[]): number[] {
    const scored = candidates.flatMap((c, i) => c.available ? [{ i, s: symphonyScreenScore(c, this.rep(c.agent)) }] : [])
    return scored.sort((a, b) => b.s - a.s).slice(0, this.#config.topL).map(x => x.i)
  }

  choose (candidates: readonly CandidateState[], _task: TaskFeatures, _rng: () => number): Choice {
    const m = SYMPHONY_DIMS
    let screened = this.screen(candidates)
    // Nobody available: their selector has nothing to choose from; the router still needs one.
    if (screened.length === 0) screened = [0]
    if (this.#xs.length < screened.length * m) this.#xs = new Float64Array(screened.length * m)
    const xs = this.#xs
    const beta = symphonyBeta(this.model.updates, this.model.lambda, this.#config.alpha, this.#config.delta)
    let best = 0
    const scores: Score[] = screened.map((ci, i) => {
      const c = candidates[ci]!
      writeSymphonyContext(c, this.rep(c.agent), xs, i * m)
      this.model.scoreInto(xs, i * m, this.#pair)
      const mean = this.#pair[0]!
      const bonus = beta * this.#pair[1]!
      return { agent: c.agent, mean, bonus, score: mean + bonus }
    })
    // Their strict `>`: the first wins a tie (equal up to rounding: the unit-length x makes fresh
    // agents tie exactly in exact arithmetic, and rounding must not pick among them).
    for (let i = 1; i < scores.length; i++) if (scores[i]!.score > scores[best]!.score + 1e-12) best = i
    return { index: screened[best]!, context: xs.subarray(best * m, best * m + m), scores }
  }

  /** Trained on success 0/1 only; the agent's rep moves by its EMA. */
  learn (agent: string, context: Float64Array, offset: number, _reward: number, success?: boolean): void {
    const ok = success === true ? 1 : 0
    this.model.update(context, offset, ok)
    const before = this.rep(agent)
    this.#rep.delete(agent)
    this.#rep.set(agent, SYMPHONY.repKeep * before + (1 - SYMPHONY.repKeep) * ok)
    if (this.#rep.size > this.#config.maxAgents) this.#rep.delete(this.#rep.keys().next().value!)
  }

  /** Consensus agreement is not part of their reward. */
  adjust (): void {}

  toJSON (): unknown {
    return { ...this.model.toJSON(), rep: [...this.#rep].map(([agent, rep]) => ({ agent, rep })) }
  }

  static fromJSON (config: ResolvedConfig, json: unknown): SymphonyLearner {
    const s = record(json, 'model')
    const l = new SymphonyLearner(config, GlobalLinUCB.fromJSON(SYMPHONY_DIMS, { alpha: 1, lambda: config.lambda, refreshEvery: config.refreshEvery }, json))
    list(s.rep ?? [], 'model.rep').forEach((raw, i) => {
      const r = record(raw, `model.rep[${i}]`)
      const agent = text(r.agent, `model.rep[${i}].agent`)
      const rep = finite(r.rep, `model.rep[${i}].rep`)
      if (!(rep >= 0 && rep <= 1)) throw new StateError(`model.rep[${i}].rep must be in 0..1`)
      l.#rep.set(agent, rep)
    })
    if (l.#rep.size > config.maxAgents) throw new StateError(`model.rep holds ${l.#rep.size} agents, more than maxAgents ${config.maxAgents}`)
    return l
  }
}
