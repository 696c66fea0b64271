/**
 * Spot-checks: after a dispatch, at a configured rate, the same agent gets a canary — a call
 * whose answer the requester already knows, indistinguishable from ordinary work. A wrong answer
 * is strong evidence against the agent's reputation and its measured accuracy (which shrinks
 * what its self-reported confidence is worth). This is how an honest minority wins once a faulty
 * majority has been caught. Canary results are this peer's own knowledge: they are not gossiped
 * (nobody else could check the claimed known answers).
 */
import { randomUUID } from 'node:crypto'
import { BUILT_IN_CANARY_CASES } from '../agents/canary-cases.ts'
import { canaryPassed, Cohorts, defaultCanaryPolicy, Suspects, unqualified, wantsCanary, type CanaryReason, type EquivalenceRule, type Json, type ReputationBook } from '../../protocols/consensus/index.ts'
import type { RunResult } from './agent-host.ts'

/** One known-answer question: fixed, or drawn fresh each time (`generate`). */
export type CanaryCase = {
  /** The agent must hold every one of these skills for the case to apply. */
  skills: string[]
} & ({
  input: unknown
  /** The known answer. */
  answer: Json
  /** How to compare (default: canonical JSON equality). */
  rule?: EquivalenceRule
} | {
  /** A fresh input and its known answer, from `random` (uniform [0, 1)). */
  generate: (random: () => number) => { input: unknown, answer: Json, rule?: EquivalenceRule }
})

/**
 * A peer's spot-checks: on unless its config says `canaries: off`, at the protocol's defaults
 * (`defaultCanaryPolicy`: 5% of dispatches, every newcomer twice, every executor of a split tally,
 * and a first check before anyone's trusted answer is weighed), with the built-in cases for the
 * built-in agent kinds plus the config's own.
 */
export function resolveCanaries (config: Partial<CanaryConfig> | undefined): CanaryConfig {
  return { ...defaultCanaryPolicy, ...config, cases: [...BUILT_IN_CANARY_CASES, ...(config?.cases ?? [])] }
}

export interface CanaryConfig {
  /** Share of dispatches followed by a canary, 0..1. */
  rate: number
  /** Canaries an agent gets before it is checked only at `rate` (default 2, 0 when rate is 0; see protocols/consensus/canary.ts). */
  newcomerChecks?: number
  /** A canary to every executor of a trusted subtask whose executors disagreed (default true, false when rate is 0). */
  onDissent?: boolean
  /** Executors without a judged canary get one before a trusted tally weighs them (default true, false when rate is 0). */
  qualify?: boolean
  cases: CanaryCase[]
}

export interface CanaryResult { agent: string, correct: boolean, got: unknown, /** This failure suspended the agent (see protocols/consensus/canary.ts `Suspects`). */ suspended?: boolean }

/** How long a canary may take: past it the agent is not judged (not answering is not lying). */
export const CANARY_DEADLINE_MS = 10_000

export class Canaries {
  readonly #config: CanaryConfig
  readonly #book: ReputationBook
  readonly #skillsOf: (agent: string) => readonly string[] | undefined
  readonly #execute: (agent: string, input: unknown, deadlineMs: number) => Promise<RunResult>
  readonly #random: () => number
  readonly #onResult: ((r: CanaryResult) => void) | undefined
  /** Who agreed with whom lately: a failed canary checks the partners next (protocols/consensus/canary.ts). */
  readonly #cohorts = new Cohorts()
  /** Agents whose latest canary failed: no weight until they pass one (protocols/consensus/canary.ts). */
  readonly suspects = new Suspects()
  /** Agents with a canary under way (one at a time each), and when it is judged. */
  readonly #inFlight = new Map<string, Promise<CanaryResult | undefined>>()
  /** Scheduled retests of suspended agents (at most one per suspended agent, see `Suspects.retestAt`). */
  readonly #timers = new Set<NodeJS.Timeout>()
  #stopped = false

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
    return await this.#check(agent, 'dispatch')
  }

  /** `agent` executed a trusted subtask whose executors disagreed: check it (see protocols/consensus/canary.ts). */
  async afterDissent (agent: string): Promise<CanaryResult | undefined> {
    return await this.#check(agent, 'dissent')
  }

  /** Retest these (suspended) agents now, or await the canary each has under way; resolves when all are judged or gave up. */
  async retest (agents: readonly string[]): Promise<void> {
    await Promise.all(agents.map(async agent => await this.#checkOrAwait(agent, 'retest')))
  }

  /** The supporters of a committed class: if one of them later fails a canary, the others are checked. */
  noteAgreement (agreed: readonly string[]): void {
    this.#cohorts.note(agreed)
  }

  /**
   * Before a trusted tally: each executor without a judged canary gets one (or its canary under
   * way is awaited). Resolves when all are judged, skipped or timed out (at most the canary deadline).
   */
  async qualify (agents: readonly string[]): Promise<void> {
    await Promise.all(unqualified(this.#config, this.#book, agents).map(async agent => await this.#checkOrAwait(agent, 'qualify')))
  }

  /** The canary under way to `agent`, or a new one. */
  async #checkOrAwait (agent: string, why: CanaryReason): Promise<CanaryResult | undefined> {
    return await (this.#inFlight.get(agent) ?? this.#check(agent, why))
  }

  async #check (agent: string, why: CanaryReason): Promise<CanaryResult | undefined> {
    if (!wantsCanary(this.#config, this.#book, agent, this.#random, this.#inFlight.has(agent) ? 1 : 0, why)) return undefined
    const skills = new Set((this.#skillsOf(agent) ?? []).map(s => s.toLowerCase()))
    const cases = this.#config.cases.filter(c => c.skills.every(s => skills.has(s.toLowerCase())))
    if (cases.length === 0) return undefined
    const picked = cases[Math.floor(this.#random() * cases.length)]!
    const c = 'generate' in picked ? picked.generate(this.#random) : picked
    const judging = this.#judge(agent, c)
    this.#inFlight.set(agent, judging)
    let judged: CanaryResult | undefined
    try {
      judged = await judging
    } finally {
      this.#inFlight.delete(agent)
      // A suspended agent is retested, judged or not this time: the first retest at once (no
      // longer in flight now), later ones after a doubling backoff.
      const now = Date.now()
      const at = this.suspects.retestAt(agent, now)
      if (at !== undefined) this.#later(at - now, () => { if (this.suspects.retestDue(agent)) void this.#check(agent, 'retest').catch(() => {}) })
    }
    // A failure points at the agent's recent partners.
    if (judged?.correct === false) for (const partner of this.#cohorts.take(agent)) void this.#check(partner, 'dissent').catch(() => {})
    return judged
  }

  /** Stops the scheduled retests (the peer is stopping). */
  stop (): void {
    this.#stopped = true
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
  }

  #later (ms: number, f: () => void): void {
    if (this.#stopped) return
    if (ms <= 0) { f(); return }
    const t = setTimeout(() => { this.#timers.delete(t); f() }, ms)
    t.unref()
    this.#timers.add(t)
  }

  async #judge (agent: string, c: { input: unknown, answer: Json, rule?: EquivalenceRule }): Promise<CanaryResult | undefined> {
    const result: RunResult = await this.#execute(agent, c.input, CANARY_DEADLINE_MS)
    // Not answering is not lying: only an answer is judged (timeouts already cost the agent in routing).
    if (!result.ok) return undefined
    const correct = canaryPassed(c.answer, result.output, c.rule)
    this.#book.canary({ id: randomUUID(), agent, correct, ...(typeof result.confidence === 'number' ? { confidence: result.confidence } : {}) })
    const suspended = this.suspects.judged(agent, correct, result.confidence)
    const judged = { agent, correct, got: result.output, suspended }
    this.#onResult?.(judged)
    return judged
  }
}
