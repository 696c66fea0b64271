/**
 * The router's policy: hybrid LinUCB over the context of context.ts. x depends on the task only,
 * so it is built once per decision; z once per candidate. The stored context is [x; z] of the
 * chosen agent, which is all a delayed reward needs.
 */
import { perAgentDims, sharedDims, taskBucket, writePerAgent, writeShared, Z, type CandidateState, type TaskFeatures } from './context.ts'
import { HybridLinUCB, type HybridOptions } from './linucb.ts'
import { pickBest, type Choice, type Learner, type ResolvedConfig, type Score } from './policy.ts'

export function hybridOptions (config: ResolvedConfig): HybridOptions {
  const w = config.rewardWeights
  return {
    // The reward's latency and cost terms, at the features' normalisation, are in z: the success
    // the model expects is its mean with them added back (agreement, when trusted, is in the mean).
    expectedSuccess: (mean, z, zOff) => w.success === 0 ? 0.5 : (mean + w.latency * z[zOff + Z.latency]! + w.cost * z[zOff + Z.cost]!) / w.success,
    alpha: config.alpha,
    lambda: config.lambda,
    refreshEvery: config.refreshEvery,
    maxAgents: config.maxAgents,
    changeDetection: config.changeDetection,
    sharedDims: sharedDims(config.context),
    perAgentDims: perAgentDims(config.context)
  }
}

export class LinUCBLearner implements Learner {
  readonly model: HybridLinUCB
  readonly contextLength: number
  readonly #config: ResolvedConfig
  readonly #x: Float64Array
  #zs: Float64Array
  readonly #pair = new Float64Array(2)
  readonly #chosen: Float64Array
  /** The last task type and its bucket: routers see long runs of one task type. */
  #lastType: string | undefined
  #lastBucket = -1

  constructor (config: ResolvedConfig, model = new HybridLinUCB(hybridOptions(config))) {
    this.#config = config
    this.model = model
    this.contextLength = model.d + model.k
    this.#x = new Float64Array(model.d)
    this.#zs = new Float64Array(16 * model.k)
    this.#chosen = new Float64Array(this.contextLength)
  }

  choose (candidates: readonly CandidateState[], task: TaskFeatures, rng: () => number): Choice {
    const { d, k } = this.model
    const context = this.#config.context
    if (task.taskType !== this.#lastType) {
      this.#lastType = task.taskType
      this.#lastBucket = taskBucket(task.taskType, context.taskBuckets)
    }
    const bucket = this.#lastBucket
    const x = this.#x
    writePerAgent(bucket, context, x, 0)
    if (this.#zs.length < candidates.length * k) this.#zs = new Float64Array(candidates.length * 2 * k)
    const zs = this.#zs
    const pair = this.#pair
    const scores: Score[] = []
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!
      writeShared(c, bucket, context, zs, i * k)
      this.model.scoreInto(c.agent, x, 0, zs, i * k, pair)
      const mean = pair[0]!
      const bonus = pair[1]!
      scores.push({ agent: c.agent, mean, bonus, score: mean + bonus })
    }
    const index = pickBest(scores, rng)
    const chosen = this.#chosen
    for (let i = 0; i < d; i++) chosen[i] = x[i]!
    for (let j = 0; j < k; j++) chosen[d + j] = zs[index * k + j]!
    return { index, context: chosen, scores }
  }

  learn (agent: string, context: Float64Array, offset: number, reward: number, success?: boolean): void {
    this.model.update(agent, context, offset, context, offset + this.model.d, reward, success)
  }

  adjust (agent: string, context: Float64Array, offset: number, delta: number): void {
    this.model.adjust(agent, context, offset, context, offset + this.model.d, delta)
  }

  toJSON (): unknown {
    return this.model.toJSON()
  }

  static fromJSON (config: ResolvedConfig, json: unknown): LinUCBLearner {
    return new LinUCBLearner(config, HybridLinUCB.fromJSON(hybridOptions(config), json))
  }
}
