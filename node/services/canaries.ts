/**
 * Spot-checks: after a dispatch, at a configured rate, the same agent gets a canary — a call
 * whose answer the requester already knows, indistinguishable from ordinary work. A wrong answer
 * is strong evidence against the agent's reputation and its measured accuracy (which shrinks
 * what its self-reported confidence is worth). This is how an honest minority wins once a faulty
 * majority has been caught. Canary results are this peer's own knowledge: they are not gossiped
 * (nobody else could check the claimed known answers).
 *
 * The rules and the loop are the shared driver's (protocols/task/canary-driver.ts, which the
 * simulator runs too); this file gives it the peer's cases, rpc calls and wall clock.
 */
import { randomUUID } from 'node:crypto'
import { BUILT_IN_CANARY_CASES } from '../agents/canary-cases.ts'
import { defaultCanaryPolicy, type EquivalenceRule, type Json, type ReputationBook } from '../../protocols/consensus/index.ts'
import { CanaryDesk, type CanaryResult } from '../../protocols/task/index.ts'
import type { Logger } from '@libp2p/interface'
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

/**
 * The peer's spot-checks: the shared driver over this peer's rpc calls (aborted at the deadline)
 * and timers (cleared at stop, which also ends the canaries under way unjudged).
 */
export function peerCanaries (init: {
  config: CanaryConfig
  book: ReputationBook
  skillsOf: (agent: string) => readonly string[] | undefined
  execute: (agent: string, input: unknown, deadlineMs: number, signal: AbortSignal) => Promise<RunResult>
  random?: () => number
  onResult?: (r: CanaryResult) => void
  /** Where a failure while handling a canary's answer is said (the peer's logger). */
  log: Pick<Logger, 'error'>
}): { desk: CanaryDesk, stop: () => void } {
  const random = init.random ?? Math.random
  const timers = new Set<NodeJS.Timeout>()
  const desk = new CanaryDesk({
    policy: init.config,
    book: init.book,
    now: Date.now,
    later: (at, f) => {
      const t = setTimeout(() => { timers.delete(t); f() }, Math.max(0, at - Date.now()))
      t.unref()
      timers.add(t)
    },
    random,
    question: agent => {
      const skills = new Set((init.skillsOf(agent) ?? []).map(s => s.toLowerCase()))
      const cases = init.config.cases.filter(c => c.skills.every(s => skills.has(s.toLowerCase())))
      if (cases.length === 0) return undefined
      const picked = cases[Math.floor(random() * cases.length)]!
      return 'generate' in picked ? picked.generate(random) : picked
    },
    ask: (agent, input, deadlineMs, done) => {
      const controller = new AbortController()
      init.execute(agent, input, deadlineMs, controller.signal)
        .then(r => { done(r) }, () => { done({ ok: false }) })
        .catch(err => { init.log.error('handling the canary answer of %s failed: %e', agent, err) })
      return () => { controller.abort() }
    },
    id: randomUUID,
    ...(init.onResult === undefined ? {} : { judged: init.onResult })
  })
  return {
    desk,
    stop: () => {
      desk.stop()
      for (const t of timers) clearTimeout(t)
      timers.clear()
    }
  }
}
