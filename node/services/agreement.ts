/**
 * Trusted subtasks, requester side: decide whether the answers so far can be committed (or one
 * more execution is needed, first-to-ahead-by-margin), form the committee, run consensus, and
 * tell the router which agents agreed with the committed result.
 */
import { aggregate, decisiveSuspects, decodeAnswer, readyToAgree, tally, type Standings } from '../../protocols/consensus/index.ts'
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
  /** Before the tally: check executors nobody has checked yet (see protocols/consensus/canary.ts `qualify`). */
  qualify?: (agents: string[]) => Promise<void>
  /** The book as tallies and committees read it (default the consensus book; spot-checks suspend agents that failed a check). */
  standings?: () => Standings
  /** Whether an agent is suspended (its latest canary failed); with `retest`, an undecided tally its suspended executors would decide waits for their retests. */
  suspended?: (agent: string) => boolean
  /** Retest these suspended executors now, resolving when each is judged or gives up (see protocols/consensus/canary.ts `decisiveSuspects`). */
  retest?: (agents: string[]) => Promise<void>
  /** How long a committee may take (default 20 s). */
  timeoutMs?: number
}

export function consensusAgreement (init: AgreementInit): Agreement {
  return {
    async agree (request: AgreementRequest): Promise<AgreementResult> {
      const bodies = request.answers.map(a => decodeAnswer(a.answer).body)
      await init.qualify?.(request.answers.map(a => a.agent))
      const book = init.standings?.() ?? init.consensus.book
      if (init.retest !== undefined && init.suspended !== undefined) {
        // An answer only suspension silenced is checked before the tally gives up on it (the view reads live suspension).
        const decisive = decisiveSuspects(bodies, request.trust.rule, book, init.consensus.book, init.suspended, consensusEmbed)
        if (decisive.length > 0) await init.retest(decisive).catch(() => {})
      }
      const ready = readyToAgree(bodies, request.trust.rule, book, request.final, consensusEmbed)
      const executors = request.answers.map(a => a.agent)
      if (!ready.ready) {
        init.onDissent?.(executors)
        return { kind: 'more', reason: ready.reason }
      }
      const statement = init.consensus.committee({
        subtask: request.key,
        inputHash: request.inputHash,
        executors: request.answers.map(a => a.agent),
        candidates: init.candidates(),
        size: request.trust.committee,
        rule: request.trust.rule
      }, book)
      const { summary } = await init.consensus.run(statement, request.answers.map(a => a.answer), init.timeoutMs ?? 20_000)
      for (const agent of summary.agreed) init.onAgreement?.(agent, true)
      for (const agent of summary.disagreed) init.onAgreement?.(agent, false)
      if (summary.disagreed.length > 0 || summary.outcome.kind !== 'answer') init.onDissent?.(executors)
      if (summary.outcome.kind === 'answer') init.onCommit?.(summary.agreed)
      const detail = {
        certificate: summary.instance,
        committee: statement.body.members.length,
        power: `${summary.power}/${summary.total}`,
        agreed: summary.agreed,
        disagreed: summary.disagreed
      }
      if (summary.outcome.kind === 'answer') return { kind: 'decided', value: summary.outcome.answer, detail }
      return { kind: 'escalate', reason: `the committee found no answer ahead by the margin: ${tally(aggregate(bodies, request.trust.rule, agent => book.standing(agent), {}, consensusEmbed))}`, detail }
    }
  }
}
