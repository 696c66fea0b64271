/**
 * From what happened to a dispatch to the number the bandit learns from.
 *
 *   reward = w.success · [success] − w.latency · latencyMs/(latencyMs + latencyScaleMs)
 *            − w.cost · cost/(cost + costScale) + w.agreement · agreement
 *
 * The first three terms are known when the agent answers. Agreement (0..1: how far the agent's
 * result matched the result consensus committed to) arrives later, as its own term: it is added
 * to the same observation's reward, never counted as a second observation. Latency and cost use
 * the context's normalisation, so the reward lives on the same scale as the features.
 */
import { normaliseCost, normaliseLatency, type ContextConfig } from './context.ts'

export interface RewardWeights {
  success: number
  latency: number
  cost: number
  agreement: number
}

export const defaultRewardWeights: Readonly<RewardWeights> = { success: 1, latency: 0.25, cost: 0.25, agreement: 0.5 }

/** What the caller learns when the agent answers (or fails to). */
export interface Outcome {
  success: boolean
  /** Observed latency (ms). */
  latencyMs: number
  cost: number
  /** If consensus is already known: agreement with the committed result, 0..1. */
  agreement?: number
}

/** Agreement with the committed result, arriving from consensus after the outcome. */
export interface LateAgreement {
  agreement: number
}

export function isOutcome (o: Outcome | LateAgreement): o is Outcome {
  return 'success' in o
}

/** Why an outcome cannot be learned from, or undefined. */
export function outcomeProblem (o: Outcome | LateAgreement): string | undefined {
  if (typeof o !== 'object' || o === null) return 'outcome must be an object'
  if (o.agreement !== undefined && !(o.agreement >= 0 && o.agreement <= 1)) return 'agreement must be a number in 0..1'
  if (!isOutcome(o)) return o.agreement === undefined ? 'outcome needs success, latencyMs and cost, or agreement' : undefined
  if (typeof o.success !== 'boolean') return 'success must be a boolean'
  if (!(Number.isFinite(o.latencyMs) && o.latencyMs >= 0)) return 'latencyMs must be a finite number >= 0'
  if (!(Number.isFinite(o.cost) && o.cost >= 0)) return 'cost must be a finite number >= 0'
  return undefined
}

/** The part of the reward known when the agent answers (agreement excluded). */
export function answerReward (o: Outcome, w: RewardWeights, context: ContextConfig): number {
  return (o.success ? w.success : 0) - w.latency * normaliseLatency(o.latencyMs, context) - w.cost * normaliseCost(o.cost, context)
}

export function agreementReward (agreement: number, w: RewardWeights): number {
  return w.agreement * agreement
}
