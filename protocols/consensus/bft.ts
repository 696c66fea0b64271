/**
 * One consensus instance (one subtask) as a pure state machine: weighted Tendermint (Buchman,
 * Kwon, Milosevic 2018, "The latest gossip on BFT consensus", Algorithm 1) over the committee the
 * requester's signed statement fixes. "2f + 1" reads "more than 2/3 of the voting power" and
 * "f + 1" reads "more than 1/3"; rule numbers in comments are the paper's lines.
 *
 * What a value is and when it is valid come from this protocol: a value is an outcome with the
 * signed answers it aggregates, and a member prevotes a value only if recomputing the aggregation
 * from that evidence gives exactly that outcome (validity.ts). A fresh proposal (validRound −1)
 * must also carry every answer the member holds; a re-proposal of a value that already gathered a
 * quorum of prevotes is not held to that, since members locked on it could otherwise never move.
 *
 * Answers reach members once: the requester hands every member the answers it holds with the
 * statement, and a member whose own executor answers later sends that answer to the others; no
 * member forwards what it received (re-flooding made answers n³ of the messages: 3,840 of 4,640
 * per commit at n = 16). The proposal carries its answers as evidence, and only the proposer sends
 * it. A member missing an answer or a proposal (a Byzantine sender skipped it, a copy was lost)
 * gets it from the resends of a stalled round and from the held answers every round change
 * sends again. Conflicting signed messages from one sender (two votes, two proposals, two
 * answers) are reported as equivocation evidence; only the first counts.
 *
 * Inputs: `start(now)`, `receive(from, wire, now)`, `addAnswer(wire, now)`, `tick(now)`.
 * Outputs: `send` effects to members, one `timer`, and events (`committed`, `equivocation`,
 * `rejected`).
 */
import { invariant, InvariantError } from '../assert.ts'
import type { Effect } from '../effects.ts'
import type { Signer, Verifier } from '../identity.ts'
import { decodeAnswer, verifyAnswer, type SignedAnswer } from './answer.ts'
import { instanceId, isOneThird, isQuorum, totalPower, verifyCommittee, type CommitteeBody, type SignedCommittee } from './committee.ts'
import { decodeCertificate, encodeCertificate, verifyCertificate, type Certificate } from './certificate.ts'
import { bytesEqual, decodeCanonical } from '../cbor.ts'
import {
  decodeMessage, makeValue, proposalValue, signProposal, signVote, verifyMessage,
  type ProposalBody, type SignedProposal, type SignedVote, type Value, type VoteBody
} from './messages.ts'
import { ConsensusError, consensusLimits, peekKind, wireHash } from './signed.ts'
import { coverageOf, invalidReason, outcomeOf, type Embed } from './validity.ts'

export interface Timeouts {
  /** Waiting for a round's proposal (default 1000 ms), plus `deltaMs` per round. */
  proposeMs: number
  prevoteMs: number
  precommitMs: number
  deltaMs: number
  resendMs: number
}

export const defaultTimeouts: Timeouts = { proposeMs: 1000, prevoteMs: 500, precommitMs: 500, deltaMs: 500, resendMs: 1000 }

export interface InstanceInit {
  statement: SignedCommittee
  signer: Signer
  verifier: Verifier
  timeouts?: Partial<Timeouts>
  embed?: Embed
  /**
   * Test only: a deliberate bug, to check that the simulator stops on a broken invariant with a
   * command that reproduces it (FoundationDB's BUGGIFY, one switch). `lock-off-by-one`: a member
   * records its lock one round ahead of the round it locked in.
   */
  testBug?: 'lock-off-by-one'
}

export type InstanceEvent =
  | { type: 'committed', certificate: Certificate }
  | { type: 'equivocation', sender: string, first: Uint8Array, second: Uint8Array }
  | { type: 'rejected', from: string, reason: string }

type Step = 'propose' | 'prevote' | 'precommit'
/**
 * `wake`: the proposer stops waiting for the last answers and proposes with what covers enough.
 * `resend`: messages are sent once and links may lose them, so an undecided member re-sends its
 * own messages of the current round (receivers drop duplicates by hash): after `resendMs`, then
 * at doubling intervals up to 8 × `resendMs`, back to `resendMs` at each new round. An instance
 * that cannot progress (its committee has lost more than a third of its power) thus costs a
 * message per member every 8 s, not every second, for as long as it is kept.
 */
type TimeoutKind = Step | 'wake' | 'resend'
type Out = Array<Effect<InstanceEvent>>
interface Proposal { message: SignedProposal, value: Value }
interface Vote { value: string | null, wire: Uint8Array }
/** The resend interval doubles at most this many times (to 8 × resendMs, well within a requester's 20 s wait). */
const MAX_RESEND_DOUBLINGS = 3
/** Message hashes remembered for dropping duplicates (cleared past this; a repeat is then only slower). */
const MAX_SEEN = 100_000
/** Rounds ahead of its own a member stores messages for. */
const FUTURE_ROUNDS = 2
/** Answer signature checks remembered (cleared past this). */
const MAX_SIGNATURES = 10_000
interface Timeout { at: number, step: TimeoutKind, round: number }

export class ConsensusInstance {
  readonly id: string
  readonly statement: CommitteeBody
  readonly #statementWire: Uint8Array
  readonly #signer: Signer
  readonly #verifier: Verifier
  readonly #timeouts: Timeouts
  readonly #embed: Embed | undefined
  readonly #testBug: InstanceInit['testBug']
  readonly #power: ReadonlyMap<string, number>
  readonly #total: number
  readonly #members: readonly string[]

  #round = 0
  #step: Step = 'propose'
  #locked: Value | undefined
  #lockedRound = -1
  #valid: Value | undefined
  #validRound = -1
  #decided: Certificate | undefined
  #started = false
  /** Resends since the round began: the next one waits resendMs × 2^resends. */
  #resends = 0
  /** Which resend chain is current (a round change starts a new one; a due resend of an old chain is dropped). */
  #resendChain = 0
  #roundStartedAt = 0
  #proposed = new Set<number>()
  readonly #answers = new Map<string, SignedAnswer>()
  readonly #proposals = new Map<number, Proposal>()
  /** `${round}:${type}` → voter → vote. */
  readonly #votes = new Map<string, Map<string, Vote[]>>()
  /** round → members heard from in that round (for the round skip, line 55). */
  readonly #heard = new Map<number, Set<string>>()
  readonly #done = new Set<string>()
  #pending: Timeout[] = []
  readonly #validity = new Map<string, string | undefined>()
  readonly #signatures = new Map<string, boolean>()
  /** Hashes of the messages handled, so repeated copies cost one hash each. */
  /** Hashes of messages handled → their round (−1 for answers), so a repeat costs one hash and still tells whose round lags. */
  readonly #seen = new Map<string, number>()
  /** When each member behind was last sent the messages of its round. */
  readonly #helpedAt = new Map<string, number>()
  /** Author of each proposal or vote handled that its sender signed itself (for #helpBehind). */
  readonly #authors = new Map<string, string>()
  /** When the certificate was last handed to each member still at work. */
  readonly #sharedAt = new Map<string, number>()

  constructor (init: InstanceInit) {
    this.statement = init.statement.body
    this.#statementWire = init.statement.wire
    this.id = instanceId(init.statement)
    this.#signer = init.signer
    this.#verifier = init.verifier
    this.#timeouts = { ...defaultTimeouts, ...init.timeouts }
    this.#embed = init.embed
    this.#testBug = init.testBug
    this.#power = new Map(this.statement.members.map(m => [m.id, m.power]))
    this.#total = totalPower(this.statement.members)
    this.#members = this.statement.members.map(m => m.id)
    if (!this.#power.has(init.signer.peerId)) throw new ConsensusError(`${init.signer.peerId} is not a member of this committee`)
    if (!verifyCommittee(init.statement, init.verifier)) throw new ConsensusError('the committee statement has a bad signature')
  }

  get decided (): Certificate | undefined { return this.#decided }
  /** The signed committee statement this instance runs under. */
  get statementWire (): Uint8Array { return this.#statementWire }
  get round (): number { return this.#round }
  get step (): Step { return this.#step }
  /** The answers this member holds, by agent. */
  answers (): SignedAnswer[] { return [...this.#answers.values()] }

  /** The proposer of a round: members in id order, rotated by the instance id. */
  proposer (round: number): string {
    const offset = Number.parseInt(this.id.slice(0, 8), 16)
    return this.#members[(offset + round) % this.#members.length]!
  }

  start (now: number): Out {
    if (this.#started) return []
    this.#started = true
    const out: Out = []
    this.#schedule('resend', this.#resendChain, now + this.#timeouts.resendMs)
    this.#startRound(0, now, out)
    this.#progress(now, out)
    return this.#withTimer(out)
  }

  /**
   * An answer this member's own executor produced (sent on to the other members), or one the
   * requester handed every member with the statement (`forward` false: they all have it).
   */
  addAnswer (wire: Uint8Array, now: number, forward = true): Out {
    const out: Out = []
    this.#receiveAnswer(this.#signer.peerId, wire, out, forward)
    if (this.#started) this.#progress(now, out)
    return this.#withTimer(out)
  }

  receive (from: string, wire: Uint8Array, now: number): Out {
    const out: Out = []
    if (wire.byteLength > 2 * consensusLimits.maxMessageBytes) {
      out.push(rejected(from, `message is ${wire.byteLength} bytes, limit ${2 * consensusLimits.maxMessageBytes}`))
      return out
    }
    // Flooding and resending deliver most messages several times: a copy already handled is
    // dropped here, before any decoding or signature check. (Once decided, a repeat from a member
    // still at work is exactly what asks for the certificate, so it is not dropped then.)
    const hash = wireHash(wire)
    const seenRound = this.#decided === undefined ? this.#seen.get(hash) : undefined
    if (seenRound !== undefined) {
      // A member still resending its own message of a round this one has left is stuck there
      // (resends come resendMs apart): help it out.
      if (seenRound >= 0 && seenRound < this.#round && this.#authors.get(hash) === from) this.#helpBehind(from, seenRound, now, out)
      return out
    }
    // Most messages name their kind in their first bytes; the decoder of that kind reads the rest.
    let kind: unknown = peekKind(wire)
    if (kind === undefined) {
      try {
        kind = (decodeCanonical(wire) as { t?: unknown } | null)?.t
      } catch (err) {
        out.push(rejected(from, `not a consensus message: ${(err as Error).message}`))
        return out
      }
    }
    if (this.#decided !== undefined) {
      // A member still at work missed the decision: hand it the certificate (at most once per
      // resend interval per member, so a lost hand-over is repeated but cannot be milked). One
      // that resends (a message heard before) or works in another round is stuck; a first copy
      // of the decided round is not (the precommits it needs are on their way to it), and
      // answering those made certificates a quarter of the messages.
      if ((kind === 'proposal' || kind === 'vote') && this.#power.has(from) && from !== this.#signer.peerId &&
          now - (this.#sharedAt.get(from) ?? -Infinity) >= this.#timeouts.resendMs &&
          (this.#seen.has(hash) || roundOf(wire) !== this.#decided.round)) {
        this.#sharedAt.set(from, now)
        out.push({ type: 'send', to: from, data: encodeCertificate(this.#decided) })
      }
      this.#markSeen(hash, -1)
      return out
    }
    try {
      if (kind === 'answer') {
        this.#markSeen(hash, -1)
        this.#receiveAnswer(from, wire, out, false)
      } else if (kind === 'certificate') {
        this.#receiveCertificate(from, wire, out)
      } else if (kind === 'proposal' || kind === 'vote') {
        const message = decodeMessage(wire)
        // Rounds far ahead are not stored (memory) nor marked seen: resends bring them again
        // once this member gets closer. The round skip (line 55) needs only the next rounds.
        if (message.body.round > this.#round + FUTURE_ROUNDS) return out
        this.#markSeen(hash, message.body.round)
        if (message.kind === 'proposal') this.#receiveProposal(from, message as SignedProposal, out)
        else this.#receiveVote(from, message as SignedVote, out)
        // Its author sent it and it verified (it is held): a repeat may ask for #helpBehind.
        const author = message.kind === 'proposal' ? (message.body as ProposalBody).proposer : (message.body as VoteBody).voter
        if (author === from && this.#holds(message, hash)) this.#authors.set(hash, from)
      } else {
        throw new ConsensusError(`unknown message type ${JSON.stringify(kind)}`)
      }
    } catch (err) {
      if (err instanceof InvariantError) throw err // our bug, not the sender's fault
      out.push(rejected(from, (err as Error).message))
      return out
    }
    if (this.#started) this.#progress(now, out)
    return this.#withTimer(out)
  }

  tick (now: number): Out {
    const out: Out = []
    const due = this.#pending.filter(t => t.at <= now).sort((a, b) => a.at - b.at)
    this.#pending = this.#pending.filter(t => t.at > now)
    for (const t of due) {
      if (this.#decided !== undefined) break
      if (t.step === 'resend') {
        // A resend chain of an earlier round was replaced when the round changed.
        if (t.round !== this.#resendChain) continue
        this.#resend(out)
        this.#resends = Math.min(this.#resends + 1, MAX_RESEND_DOUBLINGS)
        this.#schedule('resend', this.#resendChain, now + this.#timeouts.resendMs * 2 ** this.#resends)
        continue
      }
      if (t.round !== this.#round) continue
      if (t.step === 'propose' && this.#step === 'propose') { // OnTimeoutPropose
        this.#vote('prevote', null, out)
        this.#step = 'prevote'
      } else if (t.step === 'prevote' && this.#step === 'prevote') { // OnTimeoutPrevote
        this.#vote('precommit', null, out)
        this.#step = 'precommit'
      } else if (t.step === 'precommit' && this.#round < consensusLimits.maxRounds) { // OnTimeoutPrecommit
        this.#startRound(this.#round + 1, now, out) // past the last round an instance just stops
      }
    }
    this.#progress(now, out)
    return this.#withTimer(out)
  }

  // ---- inputs ----------------------------------------------------------------------------------

  #receiveAnswer (from: string, wire: Uint8Array, out: Out, forward: boolean): void {
    let answer: SignedAnswer
    try {
      answer = decodeAnswer(wire)
    } catch (err) {
      out.push(rejected(from, (err as Error).message))
      return
    }
    const b = answer.body
    if (b.subtask !== this.statement.subtask || b.inputHash !== this.statement.inputHash) return void out.push(rejected(from, `answer from ${b.agent} is for another subtask or input`))
    if (!this.statement.executors.some(e => e.agent === b.agent)) return void out.push(rejected(from, `answer from ${b.agent}, which is not an executor of this subtask`))
    const held = this.#answers.get(b.agent)
    if (held !== undefined && wireHash(held.wire) === wireHash(wire)) return
    const ok = verifyAnswer(answer, this.#verifier)
    if (this.#signatures.size >= MAX_SIGNATURES) this.#signatures.clear()
    this.#signatures.set(wireHash(wire), ok) // validity checks of proposals reuse it
    if (!ok) return void out.push(rejected(from, `answer from ${b.agent} has a bad signature`))
    if (held !== undefined) {
      out.push({ type: 'event', event: { type: 'equivocation', sender: b.agent, first: held.wire, second: wire } })
      return
    }
    this.#answers.set(b.agent, answer)
    if (forward) this.#toOthers(wire, out)
  }

  /** A certificate for this instance that verifies is as good as the precommits it carries. */
  #receiveCertificate (from: string, wire: Uint8Array, out: Out): void {
    const certificate = decodeCertificate(wire)
    if (!bytesEqual(certificate.statement, this.#statementWire)) return void out.push(rejected(from, 'certificate for another instance'))
    const check = verifyCertificate(certificate, this.#verifier, this.#embed)
    if (!check.ok) return void out.push(rejected(from, `certificate: ${check.problems.join('; ')}`))
    invariant(this.#decided === undefined, () => `consensus ${this.id}: a certificate after deciding`)
    this.#decided = certificate
    this.#pending = []
    out.push({ type: 'event', event: { type: 'committed', certificate } })
  }

  /** Whether a proposal or vote is stored here (so it passed every check). */
  #holds (message: SignedProposal | SignedVote, hash: string): boolean {
    if (message.kind === 'proposal') {
      const p = this.#proposals.get(message.body.round)
      return p !== undefined && wireHash(p.message.wire) === hash
    }
    const b = message.body as VoteBody
    return this.#votes.get(`${b.round}:${b.type}`)?.get(b.voter)?.some(v => v.value === b.value) === true
  }

  #markSeen (hash: string, round: number): void {
    if (this.#seen.size >= MAX_SEEN) { this.#seen.clear(); this.#authors.clear() }
    this.#seen.set(hash, round)
  }

  /**
   * `from` is still in `round`, which this member has left: send it this member's own proposal
   * and votes of that round, at most once per resend interval per member. Resends only carry a
   * member's current round, so without this a member whose round-r precommits were lost before
   * the network settled would wait for them for ever (found by the property test). Every honest
   * member answering with its own messages gives the laggard a quorum; a Byzantine member can
   * only ask for a few signed messages a second, and only by resending its own signed ones.
   */
  #helpBehind (from: string, round: number, now: number, out: Out): void {
    if (!this.#power.has(from) || from === this.#signer.peerId) return
    if (now - (this.#helpedAt.get(from) ?? -Infinity) < this.#timeouts.resendMs) return
    this.#helpedAt.set(from, now)
    const me = this.#signer.peerId
    const proposal = this.#proposals.get(round)
    if (proposal !== undefined && proposal.message.body.proposer === me) out.push({ type: 'send', to: from, data: proposal.message.wire })
    for (const type of ['prevote', 'precommit'] as const) {
      for (const vote of this.#votes.get(`${round}:${type}`)?.get(me) ?? []) out.push({ type: 'send', to: from, data: vote.wire })
    }
  }

  #receiveProposal (from: string, message: SignedProposal, out: Out): void {
    const b = message.body
    if (b.instance !== this.id) return void out.push(rejected(from, 'proposal for another instance'))
    if (b.proposer !== this.proposer(b.round)) return void out.push(rejected(from, `${b.proposer} is not the proposer of round ${b.round}`))
    const existing = this.#proposals.get(b.round)
    if (existing !== undefined && wireHash(existing.message.wire) === wireHash(message.wire)) return
    if (!verifyMessage(message, this.#verifier)) return void out.push(rejected(from, 'proposal has a bad signature'))
    if (existing !== undefined) {
      out.push({ type: 'event', event: { type: 'equivocation', sender: b.proposer, first: existing.message.wire, second: message.wire } })
      return
    }
    let value: Value
    try {
      value = proposalValue(message)
    } catch (err) {
      return void out.push(rejected(from, (err as Error).message))
    }
    this.#proposals.set(b.round, { message, value })
    this.#hear(b.round, b.proposer)
    // The proof of lock: prevotes of the validRound for this value, counted as if received.
    for (const wire of b.pol) {
      try {
        const vote = decodeMessage(wire)
        const v = vote.body as VoteBody
        if (vote.kind !== 'vote' || v.type !== 'prevote' || v.round !== b.validRound || v.value !== value.id) throw new ConsensusError('is not a prevote of the validRound for this value')
        this.#receiveVote(from, vote as SignedVote, out)
      } catch (err) {
        if (err instanceof InvariantError) throw err
        out.push(rejected(from, `proposal pol: ${(err as Error).message}`))
      }
    }
  }

  #receiveVote (from: string, message: SignedVote, out: Out): void {
    const b = message.body
    if (b.instance !== this.id) return void out.push(rejected(from, 'vote for another instance'))
    if (!this.#power.has(b.voter)) return void out.push(rejected(from, `${b.voter} is not a committee member`))
    const key = `${b.round}:${b.type}`
    let votes = this.#votes.get(key)
    const existing = votes?.get(b.voter) ?? []
    if (existing.some(v => v.value === b.value)) return
    // A voter's first vote always counts. Further ones (equivocation) count only for nil or for
    // the value of a proposal this member knows: junk values cannot crowd out a vote that matters.
    if (existing.length > 0 && b.value !== null && ![...this.#proposals.values()].some(p => p.value.id === b.value)) return
    if (!verifyMessage(message, this.#verifier)) return void out.push(rejected(from, 'vote has a bad signature'))
    if (existing.length > 0) {
      // Two signed votes for different values in one round: proof of equivocation. Both count,
      // each for its own value: a quorum for a value must be visible to whoever holds its votes
      // (a proof of lock carries them), and quorum intersection still holds since honest
      // members never vote twice.
      out.push({ type: 'event', event: { type: 'equivocation', sender: b.voter, first: existing[0]!.wire, second: message.wire } })
    }
    if (votes === undefined) this.#votes.set(key, votes = new Map())
    votes.set(b.voter, [...existing, { value: b.value, wire: message.wire }])
    this.#hear(b.round, b.voter)
  }

  // ---- the algorithm -----------------------------------------------------------------------------

  #startRound (round: number, now: number, out: Out): void {
    invariant(round > this.#round || (round === 0 && this.#round === 0), () => `consensus ${this.id}: round ${round} after round ${this.#round}`)
    this.#round = round
    this.#step = 'propose'
    // A new round is progress: resend at the base interval again.
    if (this.#resends > 0) {
      this.#resends = 0
      this.#pending = this.#pending.filter(t => t.step !== 'resend')
      this.#schedule('resend', ++this.#resendChain, now + this.#timeouts.resendMs)
    }
    // Answers are flooded once on arrival; a copy lost before the network settled would be lost
    // for good, so every round change sends the held answers again (receivers drop duplicates).
    if (round > 0) for (const answer of this.#answers.values()) this.#toOthers(answer.wire, out)
    // The proposer proposes in #progress once it holds every executor's answer, or, from half the
    // propose timeout on, answers covering enough of the executor weight (a slow or crashed
    // executor must not stall the round). It times out like everyone else.
    const proposeMs = this.#timeouts.proposeMs + round * this.#timeouts.deltaMs
    this.#roundStartedAt = now
    this.#schedule('propose', round, now + proposeMs)
    if (this.proposer(round) === this.#signer.peerId) this.#schedule('wake', round, now + proposeMs / 2)
  }

  /** Applies every rule whose condition holds until none does. */
  #progress (now: number, out: Out): void {
    for (let guard = 0; guard < 100 && this.#decided === undefined; guard++) {
      if (!this.#step1(now, out)) return
    }
  }

  /** One pass over the rules; true if something changed. */
  #step1 (now: number, out: Out): boolean {
    // Line 49: decide on a quorum of precommits for a proposal's value in any round.
    for (const [round, p] of this.#proposals) {
      if (isQuorum(this.#votePower(round, 'precommit', p.value.id), this.#total) && this.#isValid(p, false)) {
        this.#decide(round, p, out)
        return false
      }
    }
    // Line 55: more than 1/3 of the power is in a later round: go there.
    for (const [round, heard] of this.#heard) {
      if (round > this.#round && isOneThird(this.#powerOf(heard), this.#total)) {
        this.#startRound(round, now, out)
        return true
      }
    }
    const r = this.#round
    const p = this.#proposals.get(r)
    // Proposer (line 14): propose validValue if any, else a fresh value once the evidence suffices.
    if (this.#step === 'propose' && this.proposer(r) === this.#signer.peerId && !this.#proposed.has(r)) {
      const value = this.#valid ?? this.#freshValue(now)
      if (value !== undefined) {
        this.#proposed.add(r)
        const validRound = this.#valid === undefined ? -1 : this.#validRound
        const pol = validRound === -1 ? [] : this.#votesFor(validRound, 'prevote', value.id)
        let message: SignedProposal
        try {
          message = signProposal({ instance: this.id, round: r, validRound, outcome: value.outcome, evidence: value.evidence.map(a => a.wire), pol }, this.#signer)
        } catch (err) {
          out.push(rejected(this.#signer.peerId, `cannot propose in round ${r}: ${(err as Error).message}`))
          return true
        }
        this.#receiveProposal(this.#signer.peerId, message, out)
        this.#toOthers(message.wire, out)
        return true
      }
    }
    if (this.#step === 'propose' && p !== undefined) {
      const vr = p.message.body.validRound
      if (vr === -1) { // line 22
        const ok = this.#isValid(p, true) && (this.#lockedRound === -1 || this.#locked?.id === p.value.id)
        this.#vote('prevote', ok ? p.value.id : null, out)
        this.#step = 'prevote'
        return true
      }
      if (vr < r && isQuorum(this.#votePower(vr, 'prevote', p.value.id), this.#total)) { // line 28
        const ok = this.#isValid(p, false) && (this.#lockedRound <= vr || this.#locked?.id === p.value.id)
        this.#vote('prevote', ok ? p.value.id : null, out)
        this.#step = 'prevote'
        return true
      }
    }
    if (this.#step === 'prevote' && isQuorum(this.#votePower(r, 'prevote'), this.#total) && this.#once(`prevote-timeout:${r}`)) { // line 34
      this.#schedule('prevote', r, now + this.#timeouts.prevoteMs + r * this.#timeouts.deltaMs)
      return true
    }
    if (this.#step !== 'propose' && p !== undefined && isQuorum(this.#votePower(r, 'prevote', p.value.id), this.#total) &&
        this.#isValid(p, false) && this.#once(`polka:${r}`)) { // line 36
      if (this.#step === 'prevote') {
        this.#locked = p.value
        this.#lockedRound = this.#testBug === 'lock-off-by-one' ? r + 1 : r
        invariant(this.#lockedRound <= this.#round, () => `consensus ${this.id}: lock recorded for round ${this.#lockedRound} while in round ${this.#round}`)
        this.#vote('precommit', p.value.id, out)
        this.#step = 'precommit'
      }
      this.#valid = p.value
      this.#validRound = r
      return true
    }
    if (this.#step === 'prevote' && isQuorum(this.#votePower(r, 'prevote', null), this.#total)) { // line 44
      this.#vote('precommit', null, out)
      this.#step = 'precommit'
      return true
    }
    if (isQuorum(this.#votePower(r, 'precommit'), this.#total) && this.#once(`precommit-timeout:${r}`)) { // line 47
      this.#schedule('precommit', r, now + this.#timeouts.precommitMs + r * this.#timeouts.deltaMs)
      return true
    }
    return false
  }

  /** getValue(): every answer held, once all have come or, after a wait, they cover enough. */
  #freshValue (now: number): Value | undefined {
    const answers = [...this.#answers.values()]
    const all = answers.length === this.statement.executors.length
    const waited = now >= this.#roundStartedAt + (this.#timeouts.proposeMs + this.#round * this.#timeouts.deltaMs) / 2
    if (!all && !(waited && coverageOf(this.statement, answers.map(a => a.body.agent)) > this.statement.aggregation.coverage)) return undefined
    const { outcome } = outcomeOf(this.statement, answers.map(a => a.body), this.#embed)
    return makeValue(outcome, answers)
  }

  /** valid(v), plus, for a fresh proposal, "it omits no answer I hold". */
  #isValid (p: Proposal, fresh: boolean): boolean {
    let reason = this.#validity.get(p.value.id)
    if (!this.#validity.has(p.value.id)) {
      reason = invalidReason(this.statement, p.value, this.#verifier, this.#embed, this.#signatures)
      this.#validity.set(p.value.id, reason)
    }
    if (reason !== undefined) return false
    if (!fresh) return true
    const inEvidence = new Set(p.value.evidence.map(a => a.body.agent))
    for (const agent of this.#answers.keys()) if (!inEvidence.has(agent)) return false
    return true
  }

  #vote (type: 'prevote' | 'precommit', value: string | null, out: Out): void {
    const message = signVote({ instance: this.id, round: this.#round, type, value }, this.#signer)
    this.#receiveVote(this.#signer.peerId, message, out)
    this.#toOthers(message.wire, out)
  }

  /** My proposal and votes of the current round, and the answers I hold, once more to everyone. */
  #resend (out: Out): void {
    const r = this.#round
    const mine = this.#proposals.get(r)
    if (mine !== undefined && mine.message.body.proposer === this.#signer.peerId) this.#toOthers(mine.message.wire, out)
    for (const type of ['prevote', 'precommit'] as const) {
      for (const vote of this.#votes.get(`${r}:${type}`)?.get(this.#signer.peerId) ?? []) this.#toOthers(vote.wire, out)
    }
    for (const answer of this.#answers.values()) this.#toOthers(answer.wire, out)
  }

  #decide (round: number, p: Proposal, out: Out): void {
    invariant(this.#decided === undefined, () => `consensus ${this.id}: deciding in round ${round} after deciding in round ${this.#decided!.round}`)
    const precommits = this.#votesFor(round, 'precommit', p.value.id)
    this.#decided = {
      statement: this.#statementWire,
      round,
      outcome: p.value.outcome,
      evidence: p.value.evidence.map(a => a.wire),
      precommits
    }
    this.#pending = []
    // Decided: a repeat now asks for the certificate (the hashes seen tell repeats apart).
    this.#authors.clear()
    this.#helpedAt.clear()
    out.push({ type: 'event', event: { type: 'committed', certificate: this.#decided } })
  }

  // ---- bookkeeping -------------------------------------------------------------------------------

  /** Power of the voters with a vote (for `value`, if given) in a round; each voter counts once. */
  #votePower (round: number, type: 'prevote' | 'precommit', value?: string | null): number {
    let power = 0
    for (const [voter, votes] of this.#votes.get(`${round}:${type}`) ?? []) {
      if (value === undefined || votes.some(v => v.value === value)) power += this.#power.get(voter) ?? 0
    }
    return power
  }

  /** The signed votes for `value` in a round, one per voter. */
  #votesFor (round: number, type: 'prevote' | 'precommit', value: string): Uint8Array[] {
    const out: Uint8Array[] = []
    for (const votes of this.#votes.get(`${round}:${type}`)?.values() ?? []) {
      const vote = votes.find(v => v.value === value)
      if (vote !== undefined) out.push(vote.wire)
    }
    return out
  }

  #powerOf (members: Iterable<string>): number {
    let power = 0
    for (const m of members) power += this.#power.get(m) ?? 0
    return power
  }

  #hear (round: number, member: string): void {
    let heard = this.#heard.get(round)
    if (heard === undefined) this.#heard.set(round, heard = new Set())
    heard.add(member)
  }

  #once (flag: string): boolean {
    if (this.#done.has(flag)) return false
    this.#done.add(flag)
    return true
  }

  #schedule (step: TimeoutKind, round: number, at: number): void {
    this.#pending.push({ step, round, at })
  }

  #toOthers (data: Uint8Array, out: Out): void {
    for (const id of this.#members) if (id !== this.#signer.peerId) out.push({ type: 'send', to: id, data })
  }

  #withTimer (out: Out): Out {
    if (this.#decided === undefined && this.#pending.length > 0) out.push({ type: 'timer', at: Math.min(...this.#pending.map(t => t.at)) })
    return out
  }
}

/** The round a proposal or vote names (−1 if it does not decode). */
function roundOf (wire: Uint8Array): number {
  try {
    return decodeMessage(wire).body.round
  } catch {
    return -1
  }
}

function rejected (from: string, reason: string): Effect<InstanceEvent> {
  return { type: 'event', event: { type: 'rejected', from, reason } }
}

export type { ProposalBody, VoteBody }
