/**
 * Simulated agents: what an agent does with a call, in virtual time.
 *
 * Each agent has a task type (its specialty), a quality (success probability on easy work; lower
 * on harder work: q, q^1.6, q^2.5), a base latency that grows with load and difficulty, a cost and
 * a capacity (calls beyond it queue). Asked for work of another type it almost always fails on the
 * input. Behaviours model faults: `wrong` answers wrongly on a share of calls, `liar` is always
 * wrong and claims confidence 1.0, `colluder` gives the group's shared wrong answer, `sybil` is a
 * fake advertisement that accepts calls and never answers. Shocks change an agent mid-run
 * (unavailable, or degraded quality).
 */
import { answerReward, defaultContextConfig, defaultRewardWeights } from '../protocols/routing/index.ts'
import { gaussian, type Rng } from './rng.ts'

export type Difficulty = 'easy' | 'medium' | 'hard'
export type Behaviour = 'honest' | 'wrong' | 'liar' | 'colluder' | 'sybil'

const EXPONENT: Record<Difficulty, number> = { easy: 1, medium: 1.6, hard: 2.5 }
const SLOWER: Record<Difficulty, number> = { easy: 1, medium: 1.5, hard: 2.5 }
/** What the router credits an attempt that never answered (as RoutingCore does). */
const NO_ANSWER_MS = 60_000
/** Chance that an agent handles work of a type it was not built for. */
const OFF_TYPE_SUCCESS = 0.02

export interface AgentModel {
  /** Index in the world's agent list. */
  index: number
  host: number
  name: string
  type: string
  quality: number
  latencyMs: number
  cost: number
  capacity: number
  behaviour: Behaviour
  /** For `wrong`: share of calls answered wrongly. */
  wrongRate: number
  /** For `colluder`: the confidence it claims (default 0.9), and the calls it answers honestly first (a sleeper). */
  confidence?: number
  sleepCalls?: number
  /** Calls answered so far (a sleeper wakes after `sleepCalls`). */
  calls?: number
  /** Its reported confidence tracks its correctness (high when right, low when wrong). */
  calibrated?: boolean
  available: boolean
  /** Shocked to fail every call with an error (its host still reports it available). */
  failing?: boolean
  running: number
  /** Calls waiting for a slot: job ids, oldest first. */
  queue: number[]
}

/** The probability that this agent answers a call of `type` and `difficulty` correctly. */
export function successProbability (agent: AgentModel, type: string, difficulty: Difficulty): number {
  if (agent.behaviour === 'sybil' || agent.behaviour === 'liar') return 0
  if (agent.behaviour === 'colluder' && (agent.calls ?? 0) >= (agent.sleepCalls ?? 0)) return 0
  if (!agent.available || agent.failing === true) return 0
  const base = agent.type === type ? agent.quality ** EXPONENT[difficulty] : OFF_TYPE_SUCCESS
  return agent.behaviour === 'wrong' ? base * (1 - agent.wrongRate) : base
}

/**
 * The reward the router expects from dispatching this call to this agent, under the routing
 * reward (protocols/routing/reward.ts) with the default weights: success probability, minus the
 * latency and cost penalties at the agent's unloaded latency. The oracle maximises this.
 */
export function expectedReward (agent: AgentModel, type: string, difficulty: Difficulty): number {
  const p = successProbability(agent, type, difficulty)
  if (agent.behaviour === 'sybil' || !agent.available) return answerReward({ success: false, latencyMs: NO_ANSWER_MS, cost: agent.cost }, defaultRewardWeights, defaultContextConfig)
  const latencyMs = agent.latencyMs * SLOWER[difficulty]
  return p * defaultRewardWeights.success + answerReward({ success: false, latencyMs, cost: agent.cost }, defaultRewardWeights, defaultContextConfig)
}

/** What one call ends in. */
export type CallResult =
  | { kind: 'answer', value: number, confidence: number }
  | { kind: 'error', error: string }
  /** Never answers (a sybil, or an agent that became unavailable mid-call). */
  | { kind: 'silent' }

/**
 * Runs one call: `truth` is the correct answer for this input, `collusion` the colluders' shared
 * wrong one. Wrong answers of honest agents scatter (they rarely agree with each other).
 */
export function callResult (agent: AgentModel, type: string, difficulty: Difficulty, truth: number, collusion: number, rng: Rng): CallResult {
  if (agent.behaviour === 'sybil' || !agent.available) return { kind: 'silent' }
  if (agent.failing === true) return { kind: 'error', error: 'the agent failed on this input' }
  if (agent.behaviour === 'liar') return { kind: 'answer', value: truth + 1 + Math.floor(rng() * 1000), confidence: 1 }
  agent.calls = (agent.calls ?? 0) + 1
  if (agent.behaviour === 'colluder' && agent.calls > (agent.sleepCalls ?? 0)) return { kind: 'answer', value: collusion, confidence: agent.confidence ?? 0.9 }
  if (agent.type !== type && rng() >= OFF_TYPE_SUCCESS) return { kind: 'error', error: `${agent.type} agent cannot handle ${type} input` }
  const p = agent.quality ** EXPONENT[difficulty]
  const noisy = Math.min(0.99, Math.max(0.01, p + 0.05 * gaussian(rng)))
  // A calibrated agent knows when it is unsure: high when right, low when wrong.
  const confidence = (right: boolean): number => agent.calibrated === true ? (right ? 0.85 + 0.14 * rng() : 0.2 + 0.3 * rng()) : noisy
  if (agent.behaviour === 'wrong' && rng() < agent.wrongRate) return { kind: 'answer', value: truth + 1 + Math.floor(rng() * 1000), confidence: confidence(false) }
  if (rng() < p) return { kind: 'answer', value: truth, confidence: confidence(true) }
  // A failure is either an error the agent reports or a plausible wrong answer.
  return rng() < 0.5 ? { kind: 'error', error: 'the agent failed on this input' } : { kind: 'answer', value: truth + 1 + Math.floor(rng() * 1000), confidence: confidence(false) }
}

/** How long one call takes once it has a slot: grows with load and difficulty, lognormal noise. */
export function serviceTime (agent: AgentModel, difficulty: Difficulty, rng: Rng): number {
  const load = agent.running / agent.capacity
  return agent.latencyMs * (1 + 0.5 * load) * SLOWER[difficulty] * Math.exp(0.25 * gaussian(rng) - 0.03125)
}

/**
 * What a beacon reply says about the agent. Its host does not know an agent has stopped working
 * (node/agent-host.ts reports every agent available), so a shocked agent looks available; a
 * sybil lies: idle and fast.
 */
export function liveState (agent: AgentModel): { agent: string, load: number, queue: number, latencyMs: number, available: boolean } {
  if (agent.behaviour === 'sybil') return { agent: agent.name, load: 0, queue: 0, latencyMs: 5, available: true }
  return { agent: agent.name, load: agent.running / agent.capacity, queue: agent.queue.length, latencyMs: agent.latencyMs * (1 + 0.5 * agent.running / agent.capacity), available: true }
}
