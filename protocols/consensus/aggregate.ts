/**
 * Weighted aggregation of answers into a verdict.
 *
 * Each supporter weighs reputation × effective confidence, where the self-reported confidence is
 * capped and pulled toward the agent's measured accuracy: claiming certainty buys little, and an
 * agent whose answers have turned out wrong cannot talk its way back up. The decision is
 * first-to-ahead-by-k (MAKER-style) on weights: commit when the leading class beats the runner-up
 * by `margin` of the total weight, else ask for more executions. And the leading class needs two
 * supporters of standing (weight ≥ `minStanding`; one if only one agent answered): agents that
 * failed their checks carry almost no weight each, and a crowd of them must not commit by numbers
 * alone; nor may one credible agent's occasional slip, with nobody credible to confirm it.
 *
 * `summedConfidenceVerdict` (raw self-reported confidence summed per class, ahead by the margin:
 * what the README once called "CP-WBFT", which it is not; CP-WBFT's own rule is cp-wbft.ts) and
 * `majorityVerdict` (one agent, one vote) are reference rules; they share grouping and decision.
 */
import { canonicalJson } from '../hash.ts'
import { compare, groupAnswers, type Embedder } from './equivalence.ts'
import type { AggregationConfig, AnswerBody, AnswerClass, EquivalenceRule, Standing, Verdict } from './types.ts'

export const defaultAggregationConfig: Readonly<AggregationConfig> = {
  confidenceCap: 0.9,
  shrink: 0.5,
  margin: 0.2,
  coverage: 2 / 3,
  minStanding: 0.1
}

/** Supporters of standing the leading class needs (see `minStanding`). */
export const STANDING_SUPPORTERS = 2

/** The defaults overridden by `config`; throws if any field is outside 0..1. */
export function aggregationConfig (config: Partial<AggregationConfig> = {}): AggregationConfig {
  const c = { ...defaultAggregationConfig, ...config }
  for (const k of ['confidenceCap', 'shrink', 'margin', 'coverage', 'minStanding'] as const) {
    if (typeof c[k] !== 'number' || !(c[k] >= 0 && c[k] <= 1)) throw new RangeError(`aggregation ${k} must be a number in 0..1, got ${String(c[k])}`)
  }
  return c
}

/** Into 0..1; NaN (and anything not a number) becomes 0. */
export function unit (x: number): number {
  return typeof x === 'number' && x > 0 ? Math.min(x, 1) : 0
}

/** Upper edges of the self-reported confidence bands calibration is learned in. */
export const CONFIDENCE_BANDS = [0.5, 0.7, 0.9, 1] as const

/** The band a reported confidence falls in (0…3). */
export function confidenceBand (reported: number): number {
  const c = unit(reported)
  const i = CONFIDENCE_BANDS.findIndex(edge => c < edge)
  return i < 0 ? CONFIDENCE_BANDS.length - 1 : i
}

/** Checked answers right and wrong in the band of `reported`. */
function bandCounts (calibration: readonly number[], reported: number): [number, number] {
  const b = confidenceBand(reported)
  return [Math.max(0, calibration[2 * b] ?? 0), Math.max(0, calibration[2 * b + 1] ?? 0)]
}

/** Reputation of an agent in good standing: a newcomer's (0.25) or better. */
const GOOD_STANDING = 0.25

/** Checked answers in one band at which the learned calibration carries half the weight. */
export const CALIBRATION_HALF = 8

/**
 * Whether an answer reported at `reported` comes from a band in which the agent has proven itself:
 * the one-sided 95% Wilson lower bound of how often it was right there is at least 0.9 (for a
 * spotless record, 25 checked answers). Such an answer vouches as two supporters of standing: a
 * calibrated agent that is sure, and has proven right when sure, may decide alone (as CP-WBFT lets
 * it), where an unproven one needs a second. The bound, not the plain rate: an agent right 89% of
 * the time is 95% right over its first twenty checks one time in five.
 */
export function provenAt (calibration: readonly number[] | undefined, reported: number | undefined): boolean {
  if (calibration === undefined || reported === undefined || !Number.isFinite(reported)) return false
  const [right, wrong] = bandCounts(calibration, reported)
  const n = right + wrong
  if (n === 0) return false
  const z = 1.645
  const p = right / n
  const lower = (p + z * z / (2 * n) - z * Math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
  return lower >= 0.9
}

/**
 * Without calibration: (1 − shrink) × min(reported, cap) + shrink × accuracy, so claiming
 * certainty buys little. With a learned calibration (checked answers in the band of `reported`):
 * how often this agent was right when it reported that much (a Beta mean with the fixed rule's
 * value as its prior, CALIBRATION_HALF pseudo-answers strong). An agent whose confidence tracks its
 * correctness earns its self-report, past the cap when it is right that often; one that claims 1.0
 * and fails its checks gets what its 1.0 claims were worth (little), faster than accuracy alone
 * would say. A missing or non-finite report → accuracy.
 */
export function effectiveConfidence (reported: number | undefined, accuracy: number, config: AggregationConfig, calibration?: readonly number[]): number {
  const acc = unit(accuracy)
  if (reported === undefined || !Number.isFinite(reported)) return acc
  const fixed = unit((1 - config.shrink) * Math.min(unit(reported), config.confidenceCap) + config.shrink * acc)
  if (calibration === undefined) return fixed
  const [right, wrong] = bandCounts(calibration, reported)
  return unit((right + CALIBRATION_HALF * fixed) / (right + wrong + CALIBRATION_HALF))
}

/** Ours: reputation × effective confidence per supporter. */
export function aggregate (answers: readonly AnswerBody[], rule: EquivalenceRule, standing: (agent: string) => Standing,
  config: Partial<AggregationConfig> = {}, embed?: Embedder): Verdict {
  const c = aggregationConfig(config)
  return tally(answers, rule, c.margin, c.minStanding, a => {
    const s = standing(a.agent)
    return unit(s.reputation) * effectiveConfidence(a.confidence, s.accuracy, c, s.calibration)
  }, embed, (a, others) => {
    // A proven answer vouches twice, but only beside another answering agent in good standing: one
    // agent's word is never enough in a crowd nobody can trust (there it needs a second, as ever).
    const s = standing(a.agent)
    return provenAt(s.calibration, a.confidence) && others.some(o => o !== a.agent && unit(standing(o).reputation) >= GOOD_STANDING) ? 2 : 1
  })
}

/**
 * Summed raw confidence: each vote weighs its self-reported confidence (no cap, no reputation), so
 * a class scores mean confidence × supporters, ahead by the margin. A missing confidence counts 0.5.
 */
export function summedConfidenceVerdict (answers: readonly AnswerBody[], rule: EquivalenceRule,
  config: Partial<AggregationConfig> = {}, embed?: Embedder): Verdict {
  return tally(answers, rule, aggregationConfig(config).margin, 0,
    a => a.confidence === undefined || !Number.isFinite(a.confidence) ? 0.5 : unit(a.confidence), embed)
}

/** One agent, one vote. */
export function majorityVerdict (answers: readonly AnswerBody[], rule: EquivalenceRule,
  config: Partial<AggregationConfig> = {}, embed?: Embedder): Verdict {
  return tally(answers, rule, aggregationConfig(config).margin, 0, () => 1, embed)
}

/**
 * The share of executor weight (Σ reputation over distinct `executors`) held by executors that
 * answered: consensus requires more than `config.coverage` of it before deciding. 0 when the
 * executors have no weight at all.
 */
export function coverage (answers: readonly AnswerBody[], executors: readonly string[], standing: (agent: string) => Standing): number {
  const answered = new Set(answers.map(a => a.agent))
  let total = 0
  let covered = 0
  for (const agent of [...new Set(executors)].sort(compare)) {
    const r = unit(standing(agent).reputation)
    total += r
    if (answered.has(agent)) covered += r
  }
  return total > 0 ? unit(covered / total) : 0
}

/**
 * Groups, weighs and decides. One answer per agent (its first by canonical JSON of the whole
 * body); sums run in agent-id order so every member gets bit-identical weights.
 */
function tally (answers: readonly AnswerBody[], rule: EquivalenceRule, margin: number, minStanding: number,
  weigh: (a: AnswerBody) => number, embed: Embedder | undefined, vouches: (a: AnswerBody, answering: readonly string[]) => number = () => 1): Verdict {
  const keyed = answers.map(a => ({ a, key: canonicalJson(a) }))
    .sort((x, y) => compare(x.a.agent, y.a.agent) || compare(x.key, y.key))
  const byAgent = new Map<string, AnswerBody>()
  for (const { a } of keyed) if (!byAgent.has(a.agent)) byAgent.set(a.agent, a)
  if (byAgent.size === 0) return { kind: 'empty' }

  const weights = new Map<string, number>()
  let total = 0
  for (const [agent, a] of byAgent) {
    const w = unit(weigh(a))
    weights.set(agent, w)
    total += w
  }
  const classes: AnswerClass[] = groupAnswers([...byAgent.values()], rule, embed).map(g => {
    let weight = 0
    let best = 0
    for (let i = 0; i < g.agents.length; i++) {
      const w = weights.get(g.agents[i]!)!
      weight += w
      if (w > weights.get(g.agents[best]!)!) best = i // agents are sorted: ties keep the lowest id
    }
    return { value: g.answers[best]!, agents: g.agents, weight }
  })
  const keys = new Map<AnswerClass, string>(classes.map(k => [k, canonicalJson(k.value)]))
  classes.sort((x, y) => y.weight - x.weight || compare(keys.get(x)!, keys.get(y)!))

  const lead = (classes[0]?.weight ?? 0) - (classes[1]?.weight ?? 0)
  // The leading class needs two supporters of standing (one when only one agent answered): a
  // crowd that failed its checks cannot decide by numbers, nor can one agent's slip alone.
  const answering = [...byAgent.keys()]
  const standing = minStanding <= 0 || (classes.length > 0 &&
    classes[0]!.agents.reduce((n, a) => n + (weights.get(a)! >= minStanding ? vouches(byAgent.get(a)!, answering) : 0), 0) >= Math.min(STANDING_SUPPORTERS, byAgent.size))
  // A tie is never decided, even with margin 0.
  if (total > 0 && lead > 0 && lead >= margin * total && standing) return { kind: 'decided', value: classes[0]!.value, classes, total }
  return { kind: 'ambiguous', classes, total, lead: total > 0 ? lead / total : 0 }
}
