/**
 * The one small interface every agent kind implements. Built-in demo agents, and later LLM,
 * subprocess and MQTT agents, all sit behind it.
 *
 * @example
 * ```ts
 * const agent = createAgent({ kind: 'arithmetic' })
 * agent.describe().skills            // ['math', 'arithmetic', ...]
 * await agent.handle({ expression: '2 * (3 + 4)' })   // { output: { value: 14 }, confidence: 1 }
 * ```
 */

import type { Endorsement } from '../../protocols/consensus/index.ts'

/** What an agent says about itself: the fields its host signs into a capability vector. */
export interface AgentDescription {
  /** Local name, unique on its host; the mesh-wide id is `<host peer id>/<name>`. */
  name: string
  description: string
  skills: string[]
  /** JSON Schema of the input `handle` accepts. */
  inputSchema: Record<string, unknown>
  /** JSON Schema of the output `handle` returns. */
  outputSchema: Record<string, unknown>
  /** Price of one call, in mesh credits. */
  costPerCall: number
  /** The agent's own estimate of one call's latency, in milliseconds. */
  latencyMs: number
  /** How many calls it runs at once. */
  capacity: number
  /** Short policy tokens such as `deterministic`, `no-network`, `pii-safe`. */
  policy: string[]
}

export interface AgentResult {
  output: unknown
  /** Self-reported confidence in [0, 1]; consensus uses it only as a capped, calibrated input. */
  confidence?: number
  /** The agent's own signature over its reply (an agent with a key of its own, as MQTT agents may have). */
  endorsement?: Endorsement
}

/** What the host knows about one call besides its input. */
export interface CallInfo {
  /** Time left until the call's deadline when it starts running (after any queueing), in ms. */
  deadlineMs: number
  /** What a signed answer to this call will be bound to: an agent with its own key signs its reply for it. */
  sign?: { subtask: string, inputHash: string, agent: string }
}

export interface Agent {
  describe(): AgentDescription
  /** Runs one call. Throws `AgentInputError` for input the agent cannot handle. */
  handle(input: unknown, signal?: AbortSignal, call?: CallInfo): Promise<AgentResult>
}

/** Input that does not fit the agent's input schema, with a message saying what to send instead. */
export class AgentInputError extends Error {
  override name = 'AgentInputError'
}

/** Where an `llm` agent sends its prompts: any OpenAI-compatible chat-completions endpoint. */
export interface LlmSettings {
  /** Base URL, e.g. http://127.0.0.1:8080/v1 (`/chat/completions` is appended). */
  url: string
  model: string
  systemPrompt?: string
  /** Name of the environment variable holding the API key (keys never live in config files). */
  apiKeyEnv?: string
  temperature?: number
  maxTokens?: number
  timeoutMs?: number
}

/** One agent entry of a YAML agents file; everything but `kind` overrides the kind's defaults. */
export interface AgentSpec {
  kind: string
  name?: string
  description?: string
  skills?: string[]
  costPerCall?: number
  latencyMs?: number
  capacity?: number
  policy?: string[]
  /** Only for kind `llm`. */
  llm?: LlmSettings
}
