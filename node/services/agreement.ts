/**
 * Trusted subtasks, requester side: the shared agreement driver (protocols/task/agreement-driver.ts,
 * which the simulator runs too) with the peer's canaries and consensus service.
 */
import type { Standings } from '../../protocols/consensus/index.ts'
import { agree } from '../../protocols/task/index.ts'
import { consensusEmbed, type ConsensusService } from './consensus-service.ts'
import type { Agreement, AgreementRequest, AgreementResult } from './task-runner.ts'

export interface AgreementInit {
  consensus: ConsensusService
  /** Peers that may be drawn into a committee (the connected ones). */
  candidates: () => string[]
  /** An agent's answer agreed with the committed result, or not (the router learns from it). */
  onAgreement?: (agent: string, agreed: boolean) => void
  /** The executors of a subtask disagreed (a split tally, an escalation, dissenters): spot-check them. */
  onDissent?: (agents: string[]) => void
  /** The supporters of a committed answer (spot-checks remember who agreed with whom). */
  onCommit?: (agreed: string[]) => void
  /** Before the tally: check executors nobody has checked yet, `done` once each check ended (see protocols/consensus/canary.ts `qualify`). */
  qualify?: (agents: string[], done: () => void) => void
  /** The book as tallies and committees read it (default the consensus book; spot-checks suspend agents that failed a check). */
  standings?: () => Standings
  /** Whether an agent is suspended (its latest canary failed); with `retest`, an undecided tally its suspended executors would decide waits for their retests. */
  suspended?: (agent: string) => boolean
  /** Retest these suspended executors now, `done` once each is judged or gave up (see protocols/consensus/canary.ts `decisiveSuspects`). */
  retest?: (agents: string[], done: () => void) => void
  /** How long a committee may take (default 20 s). */
  timeoutMs?: number
}

/** The peer's I/O for the shared agreement driver (protocols/task/agreement-driver.ts): promises from the canaries and the consensus service. */
export function consensusAgreement (init: AgreementInit): Agreement {
  const { qualify, retest } = init
  return {
    async agree (request: AgreementRequest): Promise<AgreementResult> {
      return await new Promise((resolve, reject) => {
        // What throws after an await rejects, as it would in an async function (the task runner escalates).
        const safely = (f: () => void): void => { try { f() } catch (err) { reject(err) } }
        agree(request, {
          standings: () => init.standings?.() ?? init.consensus.book,
          cleared: init.consensus.book,
          ...(init.suspended === undefined ? {} : { suspended: init.suspended }),
          embed: consensusEmbed,
          ...(qualify === undefined ? {} : { qualify: (agents: string[], done: () => void) => { qualify(agents, () => { safely(done) }) } }),
          ...(retest === undefined ? {} : { retest: (agents: string[], done: () => void) => { retest(agents, () => { safely(done) }) } }),
          dissent: agents => { init.onDissent?.(agents) },
          candidates: init.candidates,
          committee: (o, standings) => init.consensus.committee(o, standings),
          run: (statement, answers, done, fail) => {
            init.consensus.run(statement, answers, init.timeoutMs ?? 20_000).then(({ summary }) => { safely(() => { done(summary) }) }, (err: Error) => { safely(() => { fail(err.message) }) })
          },
          agreed: (agent, agreed) => { init.onAgreement?.(agent, agreed) },
          committed: agreed => { init.onCommit?.(agreed) }
        }, resolve)
      })
    }
  }
}
