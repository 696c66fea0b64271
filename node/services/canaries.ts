/**
 * Spot-checks: after a dispatch, at a configured rate, the same agent gets a canary — a call
 * whose answer the requester already knows, indistinguishable from ordinary work. A wrong answer
 * is strong evidence against the agent's reputation and its measured accuracy (which shrinks
 * what its self-reported confidence is worth). This is how an honest minority wins once a faulty
 * majority has been caught. Canary results are this peer's own knowledge: they are not gossiped
 * (nobody else could check the claimed known answers).
 */
import { randomUUID } from 'node:crypto'
import { canaryPassed, wantsCanary, type EquivalenceRule, type Json, type ReputationBook } from '../../protocols/consensus/index.ts'
import type { RunResult } from './agent-host.ts'

export interface CanaryCase {
  /** The agent must hold every one of these skills for the case to apply. */
  skills: string[]
  input: unknown
  /** The known answer. */
  answer: Json
  /** How to compare (default: canonical JSON equality). */
  rule?: EquivalenceRule
}

export interface CanaryConfig {
  /** Share of dispatches followed by a canary, 0..1. */
  rate: number
  /** Canaries an agent gets before it is checked only at `rate` (default 2, 0 when rate is 0; see protocols/consensus/canary.ts). */
  newcomerChecks?: number
  cases: CanaryCase[]
}

export interface CanaryResult { agent: string, correct: boolean, got: unknown }

export class Canaries {
  readonly #config: CanaryConfig
  readonly #book: ReputationBook
  readonly #skillsOf: (agent: string) => readonly string[] | undefined
  readonly #execute: (agent: string, input: unknown, deadlineMs: number) => Promise<RunResult>
  readonly #random: () => number
  readonly #onResult: ((r: CanaryResult) => void) | undefined
  /** Agents with a canary under way: one at a time each. */
  readonly #inFlight = new Set<string>()

  constructor (init: {
    config: CanaryConfig
    book: ReputationBook
    skillsOf: (agent: string) => readonly string[] | undefined
    execute: (agent: string, input: unknown, deadlineMs: number) => Promise<RunResult>
    random?: () => number
    onResult?: (r: CanaryResult) => void
  }) {
    if (!(init.config.rate >= 0 && init.config.rate <= 1)) throw new RangeError('canary rate must be in 0..1')
    this.#config = init.config
    this.#book = init.book
    this.#skillsOf = init.skillsOf
    this.#execute = init.execute
    this.#random = init.random ?? Math.random
    this.#onResult = init.onResult
  }

  /** After a dispatch to `agent`: maybe send it a canary. Resolves when it is judged (or skipped). */
  async afterDispatch (agent: string): Promise<CanaryResult | undefined> {
    if (!wantsCanary(this.#config, this.#book, agent, this.#random, this.#inFlight.has(agent) ? 1 : 0)) return undefined
    const skills = new Set((this.#skillsOf(agent) ?? []).map(s => s.toLowerCase()))
    const cases = this.#config.cases.filter(c => c.skills.every(s => skills.has(s.toLowerCase())))
    if (cases.length === 0) return undefined
    const c = cases[Math.floor(this.#random() * cases.length)]!
    this.#inFlight.add(agent)
    let result: RunResult
    try {
      result = await this.#execute(agent, c.input, 10_000)
    } finally {
      this.#inFlight.delete(agent)
    }
    // Not answering is not lying: only an answer is judged (timeouts already cost the agent in routing).
    if (!result.ok) return undefined
    const correct = canaryPassed(c.answer, result.output, c.rule)
    this.#book.canary({ id: randomUUID(), agent, correct })
    const judged = { agent, correct, got: result.output }
    this.#onResult?.(judged)
    return judged
  }
}
