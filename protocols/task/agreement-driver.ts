/**
 * A trusted subtask's agreement, requester side, written once: check executors nobody has checked
 * yet, retest suspended ones whose answers would decide the tally, decide whether the answers so far
 * can be committed (or one more execution is needed, first-to-ahead-by-margin), form the committee,
 * run consensus, and say what the committed result teaches. The peer gives it its canaries and
 * consensus service (node/services/agreement.ts); the simulator its modelled ones
 * (sim/requester.ts). Callbacks, not promises, as in driver.ts.
 *
 * @example
 * ```ts
 * agree(request, { standings, cleared, candidates, committee, run, agreed: router.agreement }, result => done(result))
 * ```
 */
import {
  aggregate, decodeAnswer, decisiveSuspects, readyToAgree, tally,
  type AnswerBody, type CertificateSummary, type CommitteeRequest, type Embed, type SignedCommittee, type Standings
} from '../consensus/index.ts'
import type { AgreementRequest, AgreementResult } from './driver.ts'

export interface AgreementIo {
  /** The book as tallies and committees read it (suspended agents weigh nothing), read live. */
  standings: () => Standings
  /** The book without suspension: what a suspended executor would weigh once cleared. */
  cleared: Standings
  suspended?: (agent: string) => boolean
  /** For the `embedding` equivalence rule. */
  embed?: Embed
  /** Before the tally: executors nobody has checked yet get a canary; `done` once each is judged or gave up. */
  qualify?: (executors: string[], done: () => void) => void
  /** Retest these suspended executors; `done` once each is judged or gave up. */
  retest?: (agents: string[], done: () => void) => void
  /** The executors disagreed (a tally not ready, dissent in the committed result, an escalation): spot-check them. */
  dissent?: (executors: string[]) => void
  /** The answers are ready to commit (a measuring hook: the simulator scores aggregation rules on them). */
  ready?: (answers: AnswerBody[], standings: Standings) => void
  /** Peers that may be drawn into the committee. */
  candidates: () => string[]
  /** Signs the committee statement for this requester; throws when no committee can be formed. */
  committee: (request: Omit<CommitteeRequest, 'requester'>, standings: Standings) => SignedCommittee
  /** Runs consensus on the statement; `done` once the committee commits, `fail` with why it did not (a timeout, a full instance table). */
  run: (statement: SignedCommittee, answers: Uint8Array[], done: (summary: CertificateSummary) => void, fail: (reason: string) => void) => void
  /** An executor's answer agreed with the committed result, or not (the router learns from it). */
  agreed?: (agent: string, agreed: boolean) => void
  /** The supporters of a committed answer (spot-checks remember who agreed with whom). */
  committed?: (agreed: string[]) => void
}

export function agree (request: AgreementRequest, io: AgreementIo, done: (result: AgreementResult) => void): void {
  const executors = request.answers.map(a => a.agent)
  const bodies = request.answers.map(a => decodeAnswer(a.answer).body)
  const { rule } = request.trust
  const tallyNow = (): void => {
    const standings = io.standings()
    const ready = readyToAgree(bodies, rule, standings, request.final, io.embed)
    if (!ready.ready) {
      io.dissent?.(executors)
      return done({ kind: 'more', reason: ready.reason })
    }
    io.ready?.(bodies, standings)
    let statement: SignedCommittee
    try {
      statement = io.committee({ subtask: request.key, inputHash: request.inputHash, executors, candidates: io.candidates(), size: request.trust.committee, rule }, standings)
    } catch (err) {
      return done({ kind: 'escalate', reason: `consensus failed: no committee: ${(err as Error).message}` })
    }
    io.run(statement, request.answers.map(a => a.answer), summary => {
      for (const agent of summary.agreed) io.agreed?.(agent, true)
      for (const agent of summary.disagreed) io.agreed?.(agent, false)
      // The certificate names every executor, those who agreed first.
      if (summary.disagreed.length > 0 || summary.outcome.kind !== 'answer') io.dissent?.([...summary.agreed, ...summary.disagreed])
      if (summary.outcome.kind === 'answer') io.committed?.(summary.agreed)
      const detail = { certificate: summary.instance, committee: statement.body.members.length, power: `${summary.power}/${summary.total}`, agreed: summary.agreed, disagreed: summary.disagreed }
      if (summary.outcome.kind === 'answer') return done({ kind: 'decided', value: summary.outcome.answer, detail })
      const split = tally(aggregate(bodies, rule, agent => standings.standing(agent), {}, io.embed))
      done({ kind: 'escalate', reason: `the committee found no answer ahead by the margin: ${split}`, detail })
    }, reason => { done({ kind: 'escalate', reason: `consensus failed: ${reason}` }) })
  }
  const afterQualifying = (): void => {
    const { retest, suspended } = io
    if (retest === undefined || suspended === undefined) return tallyNow()
    // An answer only suspension silenced is checked before the tally gives up on it.
    const decisive = decisiveSuspects(bodies, rule, io.standings(), io.cleared, suspended, io.embed)
    if (decisive.length === 0) return tallyNow()
    retest(decisive, tallyNow)
  }
  if (io.qualify === undefined) return afterQualifying()
  io.qualify(executors, afterQualifying)
}
