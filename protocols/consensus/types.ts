import type { Endorsement } from './endorsement.ts'
/**
 * Types shared by the consensus modules: answers, equivalence rules, aggregation, reputation.
 * Everything here is plain data; the modules beside it are pure functions and state machines.
 */

/** A JSON value, as answers carry them (canonical JSON decides equality by default). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** What an executor's host signs about one execution of one subtask. */
export interface AnswerBody {
  /** Wire version. */
  v: 1
  /** The subtask instance: `<task id>/<subtask id>`, unique per requester. */
  subtask: string
  /** Hex SHA-256 of the canonical JSON of the subtask's resolved input. */
  inputHash: string
  /** `<host peer id>/<agent name>`: the host named here signs. */
  agent: string
  answer: Json
  /** Self-reported confidence in 0..1, if the agent gives one. */
  confidence?: number
  /** The agent's own signature over its reply, when it has a key of its own (an MQTT agent's). */
  endorsement?: Endorsement
}

/**
 * How answers are grouped into equivalence classes (per subtask):
 * - `json`: canonical JSON equality (the default);
 * - `numeric`: numbers within `tolerance` of each other (absolute); non-numbers by canonical JSON;
 * - `text`: strings equal after Unicode NFKC, lower-casing, trimming and collapsing whitespace;
 *   non-strings by canonical JSON;
 * - `embedding`: strings whose embeddings have cosine similarity >= `threshold` (the embedder is
 *   an input to aggregation, so every member must use the same deterministic one).
 */
export type EquivalenceRule =
  | { kind: 'json' }
  | { kind: 'numeric', tolerance: number }
  | { kind: 'text' }
  | { kind: 'embedding', threshold: number }

/** What aggregation needs to know about an agent, from the local reputation book. */
export interface Standing {
  /** Earned reputation in 0..1 (new identities start low). */
  reputation: number
  /** Measured accuracy in 0..1: how often its answers turned out right (canaries, feedback, agreement). */
  accuracy: number
  /**
   * Learned calibration, when the agent has any: per band of self-reported confidence (see
   * `CONFIDENCE_BANDS`), how many checked answers reported in that band were right and wrong,
   * as [right₀, wrong₀, right₁, wrong₁, …].
   */
  calibration?: number[]
}

export interface AggregationConfig {
  /** Self-reported confidence is capped here before use (default 0.9). */
  confidenceCap: number
  /**
   * How far effective confidence is pulled from the (capped) self-report toward measured accuracy,
   * 0..1 (default 0.5): effective = (1 − shrink) × min(reported, cap) + shrink × accuracy.
   * An answer without a confidence uses the accuracy alone.
   */
  shrink: number
  /**
   * First-to-ahead-by-k: the leading class must beat the runner-up by at least this share of the
   * total weight (default 0.2), else more executions are needed (or, with none left, escalation).
   */
  margin: number
  /** Evidence must cover executors holding more than this share of the executor weight (default 2/3). */
  coverage: number
  /**
   * The leading class needs two supporters (one when only one agent answered) whose own weight is
   * at least this (default 0.1, about a newcomer answering at moderate confidence), else the tally
   * is ambiguous: a crowd of agents that failed their checks cannot commit by numbers alone, nor
   * one credible agent's slip unconfirmed. 0 turns it off. Statements that predate it lack the
   * field, and are decided without it (see `statementAggregation`).
   */
  minStanding: number
}

/** One equivalence class in a tally. */
export interface AnswerClass {
  /** The class's answer: that of its heaviest member (ties: the lowest agent id). */
  value: Json
  /** Supporting agents, sorted. */
  agents: string[]
  /** Sum over supporters of reputation × effective confidence. */
  weight: number
}

export type Verdict =
  /** The leading class is ahead by the margin: commit `value`. */
  | { kind: 'decided', value: Json, classes: AnswerClass[], total: number }
  /** Too close to call: run more executions before deciding. */
  | { kind: 'ambiguous', classes: AnswerClass[], total: number, lead: number }
  /** Nothing to aggregate. */
  | { kind: 'empty' }
