/**
 * Valid certificates made directly (no consensus run): four members, each hosting an executor that
 * answers 42, all precommitting in round 0. With fast signers for machine tests, with real Ed25519
 * signers for tests on real peers (they verify what they restore and fetch).
 */
import type { Signer } from '../../protocols/identity.ts'
import { signAnswer } from '../../protocols/consensus/answer.ts'
import { encodeCertificate } from '../../protocols/consensus/certificate.ts'
import { instanceId, signCommittee, votingPowers } from '../../protocols/consensus/committee.ts'
import { makeValue, signVote } from '../../protocols/consensus/messages.ts'
import { outcomeOf } from '../../protocols/consensus/validity.ts'
import { INPUT_HASH } from './committee.ts'

/** The encoded certificate for `subtask`; `signers[0]` is the requester. */
export function makeCertificate (signers: readonly Signer[], subtask: string): Uint8Array {
  const members = votingPowers(new Map(signers.map(s => [s.peerId, 0.8])))
  const agents = signers.map(s => `${s.peerId}/exec`)
  const executors = agents.map(agent => ({ agent, reputation: 0.6, accuracy: 0.7 })).sort((a, b) => (a.agent < b.agent ? -1 : 1))
  const statement = signCommittee({
    v: 1,
    subtask,
    inputHash: INPUT_HASH,
    requester: signers[0]!.peerId,
    members,
    executors,
    rule: { kind: 'json' },
    aggregation: { confidenceCap: 0.9, shrink: 0.5, margin: 0.2, coverage: 2 / 3, minStanding: 0.1 }
  }, signers[0]!)
  const answers = signers.map((s, i) => signAnswer({ v: 1, subtask, inputHash: INPUT_HASH, agent: agents[i]!, answer: 42, confidence: 0.7 }, s))
  const { outcome } = outcomeOf(statement.body, answers.map(a => a.body))
  const value = makeValue(outcome, answers)
  const instance = instanceId(statement)
  return encodeCertificate({
    statement: statement.wire,
    round: 0,
    outcome,
    evidence: value.evidence.map(a => a.wire),
    precommits: signers.map(s => signVote({ instance, round: 0, type: 'precommit', value: value.id }, s).wire)
  })
}
