/**
 * The context vectors the selection stage scores: what the router knows about one candidate agent
 * for one task, turned into numbers with fixed, documented positions.
 *
 * Hybrid LinUCB takes two vectors per candidate. The shared vector z carries task × agent features
 * whose effect is the same for every agent (an agent with more load is worse, whoever it is), so a
 * new agent is scored from its first beacon. The per-agent vector x carries what only that agent's
 * own history can tell: its offset and its competence per task type.
 *
 * Shared z (k = 7 + B, B = taskBuckets, default 4 → k = 11):
 *
 * | index     | meaning                                     | range  |
 * | --------- | ------------------------------------------- | ------ |
 * | 0         | bias (always 1)                             | 1      |
 * | 1         | similarity: cosine(task, agent capability)  | 0..1   |
 * | 2         | load: queue / capacity                      | 0..1   |
 * | 3         | latency: latencyMs / (latencyMs + latencyScaleMs) | 0..1 |
 * | 4         | cost: cost / (cost + costScale)             | 0..1   |
 * | 5         | reputation                                  | 0..1   |
 * | 6         | available (1) or not (0)                    | 0 or 1 |
 * | 7 … 7+B−1 | similarity × [task type hashes to bucket j] | 0..1   |
 *
 * Per-agent x (d = 1 + B, default 5):
 *
 * | index     | meaning                                     | range  |
 * | --------- | ------------------------------------------- | ------ |
 * | 0         | bias (always 1): the agent's own offset     | 1      |
 * | 1 … B     | task type hashes to bucket j (one-hot)      | 0 or 1 |
 *
 * A task without a type has all bucket features 0. Task types share buckets when their hashes
 * collide (FNV-1a mod B): B stays small and fixed so that the dimensions, and the saved state,
 * do not depend on which task types the mesh has seen.
 *
 * Symphony-Coord's selector uses its own fixed 6-vector (symphony.ts).
 */

/** What the router knows about one candidate agent when it decides. */
export interface CandidateState {
  /** Agent id, `<host peer id>/<name>`. */
  agent: string
  /** Cosine similarity of the task to the agent's capability, 0..1 (clamped). */
  similarity: number
  /** queue / capacity, 0..1 (clamped). */
  load: number
  /** Expected latency in ms (advertised or observed), >= 0. */
  latencyMs: number
  /** Cost per call, >= 0. */
  cost: number
  /** 0..1 (clamped). */
  reputation: number
  available: boolean
}

/** What the router knows about the task itself. */
export interface TaskFeatures {
  /** A coarse task kind (e.g. `arithmetic`, `summarize`); hashed into one of `taskBuckets`. */
  taskType?: string
}

export interface ContextConfig {
  /** Latency at which the latency feature is 0.5 (default 1000 ms). */
  latencyScaleMs: number
  /** Cost at which the cost feature is 0.5 (default 1). */
  costScale: number
  /** Task-type buckets B (default 4, 1..64). Changes the dimensions: a saved model needs the same B. */
  taskBuckets: number
}

export const defaultContextConfig: Readonly<ContextConfig> = { latencyScaleMs: 1000, costScale: 1, taskBuckets: 4 }

/** Positions in the shared vector z. */
export const Z = { bias: 0, similarity: 1, load: 2, latency: 3, cost: 4, reputation: 5, available: 6, taskSimilarity: 7 } as const

export const sharedDims = (config: ContextConfig): number => Z.taskSimilarity + config.taskBuckets
export const perAgentDims = (config: ContextConfig): number => 1 + config.taskBuckets

/** Symphony-Coord's fixed vector: [1, match, load, latency, reputation, available]. */
export const SYMPHONY_DIMS = 6

/** latencyMs → 0..1, 0.5 at the scale; saturating, so one slow outlier cannot dominate. */
export function normaliseLatency (latencyMs: number, config: ContextConfig): number {
  const l = latencyMs > 0 ? latencyMs : 0
  return l / (l + config.latencyScaleMs)
}

export function normaliseCost (cost: number, config: ContextConfig): number {
  const c = cost > 0 ? cost : 0
  return c / (c + config.costScale)
}

/** The bucket a task type hashes to (FNV-1a over UTF-16 code units), or -1 for no type. */
export function taskBucket (taskType: string | undefined, buckets: number): number {
  if (taskType === undefined || taskType === '') return -1
  let h = 0x811c9dc5
  for (let i = 0; i < taskType.length; i++) {
    h ^= taskType.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) % buckets
}

/** Writes z for one candidate at `out[offset…offset+k)`. `bucket` comes from `taskBucket`. */
export function writeShared (c: CandidateState, bucket: number, config: ContextConfig, out: Float64Array, offset: number): void {
  const sim = clamp01(c.similarity)
  out[offset + Z.bias] = 1
  out[offset + Z.similarity] = sim
  out[offset + Z.load] = clamp01(c.load)
  out[offset + Z.latency] = normaliseLatency(c.latencyMs, config)
  out[offset + Z.cost] = normaliseCost(c.cost, config)
  out[offset + Z.reputation] = clamp01(c.reputation)
  out[offset + Z.available] = c.available ? 1 : 0
  for (let j = 0; j < config.taskBuckets; j++) out[offset + Z.taskSimilarity + j] = j === bucket ? sim : 0
}

/** Writes x (the same for every candidate of one task) at `out[offset…offset+d)`. */
export function writePerAgent (bucket: number, config: ContextConfig, out: Float64Array, offset: number): void {
  out[offset] = 1
  for (let j = 0; j < config.taskBuckets; j++) out[offset + 1 + j] = j === bucket ? 1 : 0
}

/** Why a candidate cannot be scored, or undefined. Numbers must be finite; ranges are clamped. */
export function candidateProblem (c: CandidateState): string | undefined {
  if (typeof c.agent !== 'string' || c.agent === '') return 'candidate agent must be a non-empty string'
  if (Number.isFinite(c.similarity) && Number.isFinite(c.load) && Number.isFinite(c.latencyMs) && Number.isFinite(c.cost) && Number.isFinite(c.reputation)) return undefined
  for (const key of ['similarity', 'load', 'latencyMs', 'cost', 'reputation'] as const) {
    if (!Number.isFinite(c[key])) return `candidate ${c.agent}: ${key} must be a finite number`
  }
  return undefined
}

function clamp01 (v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v
}
