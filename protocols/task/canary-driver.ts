/**
 * Spot-checks, requester side, written once: when to send a canary (protocols/consensus/canary.ts
 * `wantsCanary`), one at a time per agent, judged against the known answer, its failure suspending
 * the agent and pointing at its recent partners, a suspended agent retested on a doubling backoff,
 * and agreements that wait for canaries told when each has ended. The peer gives it libp2p calls and
 * the wall clock (node/services/canaries.ts); the simulator modelled messages and virtual time
 * (sim/requester.ts). Callbacks, not promises, as in driver.ts.
 *
 * @example
 * ```ts
 * const desk = new CanaryDesk({ policy, book, now, later, random, question, ask, id })
 * desk.check(agent, 'dispatch')                  // after a dispatch: maybe a canary
 * desk.qualify(executors, () => tally())         // before a trusted tally: check the unchecked
 * ```
 */
import {
  canaryPassed, Cohorts, Suspects, unqualified, wantsCanary,
  type CanaryPolicy, type CanaryReason, type EquivalenceRule, type Json, type ReputationBook
} from '../consensus/index.ts'

/** A known-answer question: the input sent, the answer expected, and how to compare them (default canonical JSON). */
export interface CanaryQuestion { input: unknown, answer: Json, rule?: EquivalenceRule }

/** What came back: an answer (judged) or a failure (not judged: not answering is not lying). */
export type CanaryReply = { ok: true, output: unknown, confidence?: number | null } | { ok: false }

export interface CanaryResult { agent: string, correct: boolean, got: unknown, /** This failure suspended the agent (`Suspects`). */ suspended?: boolean }

/** How long a canary may take by default: past it the agent is not judged. */
export const CANARY_DEADLINE_MS = 10_000

export interface CanaryIo {
  policy: CanaryPolicy
  /** Where judged canaries are recorded (they weigh in reputation and measured accuracy). */
  book: ReputationBook
  now: () => number
  /** Calls `f` once the clock reads `at`, never synchronously (a stale wake-up is ignored here). */
  later: (at: number, f: () => void) => void
  random: () => number
  /** A question this agent can be asked, indistinguishable from its ordinary work, or undefined when none applies. */
  question: (agent: string) => CanaryQuestion | undefined
  /** Sends the canary; `done` once, with its reply. May return how to give up on it (called at the deadline). */
  ask: (agent: string, input: unknown, deadlineMs: number, done: (reply: CanaryReply) => void) => (() => void) | undefined
  /** An id for the book's record of a judged canary. */
  id: () => string
  /** A canary was judged. */
  judged?: (result: CanaryResult) => void
  deadlineMs?: number
}

type Waiter = (result: CanaryResult | undefined) => void

export class CanaryDesk {
  /** Agents whose latest canary failed: no weight until they pass one. */
  readonly suspects = new Suspects()
  /** Who agreed with whom lately: a failed canary checks the partners next. */
  readonly #cohorts = new Cohorts()
  /** Agents with a canary under way (one at a time each): who waits for it to end, and how to end it unjudged. */
  readonly #inFlight = new Map<string, { waiters: Waiter[], abandon: () => void }>()
  readonly #io: CanaryIo
  #stopped = false

  constructor (io: CanaryIo) {
    if (!(io.policy.rate >= 0 && io.policy.rate <= 1)) throw new RangeError('canary rate must be in 0..1')
    this.#io = io
  }

  /** Maybe sends `agent` a canary for this reason; `done` once it is judged (or undefined: skipped, failed, timed out). */
  check (agent: string, why: CanaryReason, done?: Waiter): void {
    const io = this.#io
    if (this.#stopped || !wantsCanary(io.policy, io.book, agent, io.random, this.#inFlight.has(agent) ? 1 : 0, why)) return done?.(undefined)
    const question = io.question(agent)
    if (question === undefined) return done?.(undefined)
    const waiters: Waiter[] = done === undefined ? [] : [done]
    let ended = false
    let giveUp: (() => void) | undefined
    const abandon = (): void => { if (!ended) { giveUp?.(); end({ ok: false }) } }
    const end = (reply: CanaryReply): void => {
      if (ended) return
      ended = true
      this.#inFlight.delete(agent)
      const judged = reply.ok && !this.#stopped ? this.#judge(agent, question, reply) : undefined
      // A suspended agent is retested, judged or not this time: at once, then on a doubling backoff.
      const at = this.suspects.retestAt(agent, io.now())
      if (at !== undefined) this.#later(at, () => { if (this.suspects.retestDue(agent)) this.check(agent, 'retest') })
      // A failure points at the agent's recent partners.
      if (judged?.correct === false) for (const partner of this.#cohorts.take(agent)) this.check(partner, 'dissent')
      for (const w of waiters) w(judged)
    }
    this.#inFlight.set(agent, { waiters, abandon })
    const deadline = io.deadlineMs ?? CANARY_DEADLINE_MS
    this.#later(io.now() + deadline, abandon)
    giveUp = io.ask(agent, question.input, deadline, end)
  }

  /** The executors of a trusted subtask disagreed: check each (see protocols/consensus/canary.ts `onDissent`). */
  dissent (agents: readonly string[]): void {
    for (const agent of new Set(agents)) this.check(agent, 'dissent')
  }

  /** Before a trusted tally: each executor without a judged canary gets one (or its canary under way is awaited); `done` once all have ended. */
  qualify (agents: readonly string[], done: () => void): void {
    this.#all(unqualified(this.#io.policy, this.#io.book, agents), 'qualify', done)
  }

  /** Retests these (suspended) agents now, or awaits the canary each has under way; `done` once all have ended. */
  retest (agents: readonly string[], done: () => void): void {
    this.#all([...new Set(agents)], 'retest', done)
  }

  /** The supporters of a committed class: if one of them later fails a canary, the others are checked. */
  noteAgreement (agreed: readonly string[]): void {
    this.#cohorts.note(agreed)
  }

  /** No more canaries or retests: those under way end unjudged now (their waiters go on), and no timer of this desk fires. */
  stop (): void {
    this.#stopped = true
    for (const { abandon } of [...this.#inFlight.values()]) abandon()
  }

  #all (agents: readonly string[], why: CanaryReason, done: () => void): void {
    let left = agents.length
    if (left === 0) return done()
    const one = (): void => { if (--left === 0) done() }
    for (const agent of agents) {
      const under = this.#inFlight.get(agent)
      if (under !== undefined) under.waiters.push(one)
      else this.check(agent, why, one)
    }
  }

  #later (at: number, f: () => void): void {
    if (!this.#stopped) this.#io.later(at, () => { if (!this.#stopped) f() })
  }

  #judge (agent: string, question: CanaryQuestion, reply: Extract<CanaryReply, { ok: true }>): CanaryResult {
    const correct = canaryPassed(question.answer, reply.output, question.rule)
    const confidence = typeof reply.confidence === 'number' ? reply.confidence : undefined
    this.#io.book.canary({ id: this.#io.id(), agent, correct, ...(confidence !== undefined ? { confidence } : {}) })
    const suspended = this.suspects.judged(agent, correct, confidence)
    const result = { agent, correct, got: reply.output, suspended }
    this.#io.judged?.(result)
    return result
  }
}
