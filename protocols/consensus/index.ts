/**
 * Weighted Byzantine-tolerant consensus on results. A subtask that needs trust runs on several
 * agents; their hosts sign their answers; the requester signs a committee statement (members and
 * voting power, executors and their standing, the equivalence rule); the committee runs weighted
 * Tendermint on the aggregated answer and commits it with a certificate anyone can check offline.
 * Reputation is computed by every peer from the certificates, canaries and feedback it has seen,
 * in any order, to the same numbers.
 *
 * @example
 * ```ts
 * const statement = signCommittee({
 *   v: 1, subtask: 'task-7/sum', inputHash, requester: me.peerId,
 *   members: votingPowers(new Map(hosts.map(h => [h, book.hostReputation(h)]))),
 *   executors: agents.map(agent => ({ agent, ...book.standing(agent) })),
 *   rule: { kind: 'numeric', tolerance: 1e-9 }, aggregation: defaultAggregationConfig
 * }, me)
 * const instance = new ConsensusInstance({ statement, signer: me, verifier })
 * drive(instance.start(now))                              // send / timer / event effects
 * drive(instance.addAnswer(signAnswer(body, me).wire, now))
 * drive(instance.receive(from, wire, now))                // on every committee message
 * // … an event { type: 'committed', certificate } arrives:
 * verifyCertificate(certificate, verifier)                // { ok: true, summary: { outcome, agreed, disagreed, … } }
 * book.certificate({ id: certificateId(certificate), agreed, disagreed })
 * ```
 */
export type { AggregationConfig, AnswerBody, AnswerClass, EquivalenceRule, Json, Standing, Verdict } from './types.ts'
export { aggregate, aggregationConfig, coverage, defaultAggregationConfig, effectiveConfidence, unit, majorityVerdict, summedConfidenceVerdict } from './aggregate.ts'
export { CP_WBFT_TOPOLOGIES, cpWbftNeighbours, cpWbftVerdict, type CpWbftOptions, type CpWbftTopology } from './cp-wbft.ts'
export { groupAnswers, normaliseText, RuleError, validateRule } from './equivalence.ts'
export { ReputationBook, ReputationError, reputationConfig } from './reputation.ts'
export type { CanaryFact, CertificateFact, Counts, EquivocationFact, FeedbackFact, ReputationJson, Standings } from './reputation.ts'
export { decodeAnswer, signAnswer, verifyAnswer } from './answer.ts'
export type { SignedAnswer } from './answer.ts'
export { checkEndorsement, endorsementMessage, MAX_ENDORSED_REPLY_BYTES } from './endorsement.ts'
export type { Endorsement } from './endorsement.ts'
export {
  decodeCommittee, drawMembers, instanceId, isQuorum, MAX_MEMBER_SHARE, MIN_MEMBERS, signCommittee, totalPower, verifyCommittee, votingPowers
} from './committee.ts'
export type { CommitteeBody, Executor, Member, SignedCommittee } from './committee.ts'
export { ConsensusInstance, defaultTimeouts } from './bft.ts'
export type { InstanceEvent, InstanceInit, Timeouts } from './bft.ts'
export type { Outcome } from './messages.ts'
export {
  certificateFromJson, certificateId, certificateToJson, decodeCertificate, encodeCertificate, verifyCertificate
} from './certificate.ts'
export type { Certificate, CertificateCheck, CertificateSummary } from './certificate.ts'
export { ConsensusError, consensusLimits } from './signed.ts'
export { ConsensusPeer, MEMBER_GIVE_UP_MS } from './peer.ts'
export { checkEquivocation, encodeEquivocation } from './evidence.ts'
export type { Equivocation } from './evidence.ts'
export type { ConsensusPeerEvent, ConsensusPeerInit, GossipVerdict } from './peer.ts'
export type { Embed } from './validity.ts'
export { committeeBody, readyToAgree, tally } from './requester.ts'
export { canaryPassed, Cohorts, decisiveSuspects, defaultCanaryPolicy, discredited, judged, RETEST_BACKOFF, Suspects, unqualified, wantsCanary } from './canary.ts'
export type { CanaryPolicy, CanaryReason } from './canary.ts'
export type { CommitteeRequest } from './requester.ts'
