import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { canonicalJson } from '../../protocols/hash.ts'
import { encodeCanonical } from '../../protocols/cbor.ts'
import { signCommittee, votingPowers, isQuorum, totalPower } from '../../protocols/consensus/committee.ts'
import { ConsensusInstance } from '../../protocols/consensus/bft.ts'
import {
  certificateFromJson, certificateToJson, decodeCertificate, encodeCertificate, verifyCertificate, type Certificate
} from '../../protocols/consensus/certificate.ts'
import { decodeMessage, signVote } from '../../protocols/consensus/messages.ts'
import { peekKind } from '../../protocols/consensus/signed.ts'
import { checkEquivocation, ConsensusPeer, encodeEquivocation } from '../../protocols/consensus/index.ts'
import { makeSigners, verifier as ed25519 } from '../helpers/hosts.ts'
import { consensusEmbed } from '../../node/services/consensus-service.ts'
import { answerOf, INPUT_HASH, runCommittee, setupCommittee, type Behaviour, type CommitteeSetup, type RunOptions } from '../helpers/committee.ts'

const calm = (answers: RunOptions['answers'], extra: Partial<RunOptions> = {}): RunOptions =>
  ({ seed: 1, dropBeforeGst: 0, gstMs: 0, deltaMs: 20, untilMs: 60_000, behaviours: answers.map(() => 'honest' as Behaviour), answers, ...extra })

function sameDecision (decided: Array<Certificate | undefined>): boolean {
  const outcomes = new Set(decided.filter(c => c !== undefined).map(c => canonicalJson({ o: c.outcome, e: c.evidence.map(b => Buffer.from(b).toString('hex')) })))
  return outcomes.size <= 1
}

describe('consensus: committee and voting power', () => {
  it('caps every member below 30% of the power and needs at least 4 members', () => {
    const { signers } = setupCommittee(4, 1)
    const powers = votingPowers(new Map(signers.map((s, i) => [s.peerId, [1, 0.05, 0.05, 0.05][i]!])))
    const total = totalPower(powers)
    for (const m of powers) expect(m.power).toBeLessThan(0.3 * total)
    expect(() => votingPowers(new Map(signers.slice(0, 3).map(s => [s.peerId, 1])))).toThrow(/at least 4 members/)
    fc.assert(fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 4, maxLength: 20 }), reps => {
      const members = votingPowers(new Map(reps.map((r, i) => [`m${String(i).padStart(2, '0')}`, r])))
      const sum = totalPower(members)
      return members.every(m => m.power >= 1 && m.power < 0.3 * sum)
    }))
  })

  it('refuses a statement whose requester is not a member or whose member is over the cap', () => {
    const setup = setupCommittee(4, 2)
    const body = setup.statement.body
    expect(() => signCommittee({ ...body, members: body.members.map((m, i) => ({ ...m, power: i === 0 ? 1000 : 10 })) }, setup.signers[0]!)).toThrow(/at or above the cap/)
    expect(() => signCommittee(body, setup.signers[1]!)).toThrow(/cannot sign a committee statement/)
  })
})

describe('consensus: one instance, honest committee', () => {
  it('4 honest members commit the answer; the certificate verifies and names who agreed', () => {
    const setup = setupCommittee(4, 3)
    const result = runCommittee(setup, calm([42, 42, 42, 41]))
    expect(result.decided.every(c => c !== undefined)).toBe(true)
    expect(sameDecision(result.decided)).toBe(true)
    const certificate = result.decided[0]!
    expect(certificate.outcome).toEqual({ kind: 'answer', answer: 42 })
    const check = verifyCertificate(certificate, setup.verifier)
    expect(check.ok).toBe(true)
    if (!check.ok) return
    expect(check.summary.agreed).toEqual(setup.agents.slice(0, 3).sort())
    expect(check.summary.disagreed).toEqual([setup.agents[3]])
    expect(isQuorum(check.summary.power, check.summary.total)).toBe(true)
  })

  it('a split tally commits an escalation instead of guessing', () => {
    const setup = setupCommittee(4, 4)
    const result = runCommittee(setup, calm([1, 1, 2, 2]))
    expect(result.decided.every(c => c?.outcome.kind === 'escalate')).toBe(true)
    expect(verifyCertificate(result.decided[0]!, setup.verifier).ok).toBe(true)
  })

  it('rejects replayed evidence: a genuine answer signed for another subtask, or by a non-executor', () => {
    const setup = setupCommittee(4, 6)
    const other = setupCommittee(4, 6, { subtask: 'another-task/s1' })
    const me = new ConsensusInstance({ statement: setup.statement, signer: setup.signers[1]!, verifier: setup.verifier })
    me.start(0)
    const replayed = me.receive(setup.signers[2]!.peerId, answerOf(other, 2, 7).wire, 1)
    expect(replayed).toContainEqual({ type: 'event', event: { type: 'rejected', from: setup.signers[2]!.peerId, reason: expect.stringMatching(/another subtask or input/) } })
    const stranger = setupCommittee(4, 60)
    const foreign = me.receive(setup.signers[2]!.peerId, answerOf({ ...stranger, statement: setup.statement }, 0, 7).wire, 1)
    expect(foreign).toContainEqual({ type: 'event', event: { type: 'rejected', from: setup.signers[2]!.peerId, reason: expect.stringMatching(/not an executor/) } })
    expect(me.answers()).toHaveLength(0)
  })

  it('reads a message\'s kind from its first bytes, and still refuses one that only starts like a vote', () => {
    const setup = setupCommittee(4, 61)
    const vote = signVote({ instance: 'ab'.repeat(32), round: 0, type: 'prevote', value: null }, setup.signers[2]!)
    expect(peekKind(vote.wire)).toBe('vote')
    expect(peekKind(answerOf(setup, 2, 7).wire)).toBe('answer')
    expect(peekKind(encodeCanonical({ a: 1, t: 'vote' }))).toBeUndefined() // "t" not first: decoded instead
    expect(peekKind(Uint8Array.of(0xa3, 0x61, 0x74, 0x64, 0x76, 0x6f))).toBeUndefined() // cut short
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), bytes => {
      const kind = peekKind(bytes)
      return kind === undefined || /^[a-z]{1,23}$/.test(kind)
    }), { seed: 61 })
    const me = new ConsensusInstance({ statement: setup.statement, signer: setup.signers[1]!, verifier: setup.verifier })
    me.start(0)
    const forged = Uint8Array.of(...vote.wire.subarray(0, 8), 0xff, 0xff)
    expect(peekKind(forged)).toBe('vote')
    expect(me.receive(setup.signers[2]!.peerId, forged, 1)).toContainEqual({ type: 'event', event: { type: 'rejected', from: setup.signers[2]!.peerId, reason: expect.stringMatching(/CBOR/) } })
    expect(me.receive(setup.signers[2]!.peerId, Uint8Array.of(0x01, 0x02), 1)).toContainEqual({ type: 'event', event: { type: 'rejected', from: setup.signers[2]!.peerId, reason: expect.stringMatching(/not a consensus message/) } })
  })

  it('the embedding rule groups paraphrases with the shared offline embedder; the certificate verifies with it', () => {
    const setup = setupCommittee(4, 8, { rule: { kind: 'embedding', threshold: 0.8 } })
    const answers = ['Paris is the capital of France.', 'paris is the capital of france', 'Paris is the capital of France!', 'Berlin is the capital of Germany.']
    const result = runCommittee(setup, { ...calm(answers), embed: consensusEmbed })
    const certificate = result.decided[0]!
    expect(certificate.outcome.kind).toBe('answer')
    expect(String((certificate.outcome as { answer: string }).answer).toLowerCase()).toContain('paris')
    const check = verifyCertificate(certificate, setup.verifier, consensusEmbed)
    expect(check.ok && check.summary.disagreed).toEqual([setup.agents[3]])
    expect(verifyCertificate(certificate, setup.verifier)).toMatchObject({ ok: false, problems: [expect.stringMatching(/cannot recompute the aggregation: .*embed/i)] })
  })

  it('refuses a fresh proposal that omits an answer the member holds, and accepts the same value once it holds no more', () => {
    const setup = setupCommittee(4, 5)
    const probe = new ConsensusInstance({ statement: setup.statement, signer: setup.signers[0]!, verifier: setup.verifier })
    const p = setup.signers.findIndex(s => s.peerId === probe.proposer(0))
    const others = [0, 1, 2, 3].filter(i => i !== p)
    const [full, partial] = [others[0]!, others[1]!]
    // The proposer holds 3 of the 4 answers; after half its propose timeout it proposes them (75% coverage).
    const proposer = new ConsensusInstance({ statement: setup.statement, signer: setup.signers[p]!, verifier: setup.verifier })
    proposer.start(0)
    const missing = others[2]!
    for (const i of [0, 1, 2, 3].filter(i => i !== missing)) proposer.addAnswer(answerOf(setup, i, 7).wire, 0)
    const proposal = proposer.tick(600).find(e => e.type === 'send' && Buffer.from(e.data).includes(Buffer.from('proposal')))
    expect(proposal).toBeDefined()
    const prevoteOf = (member: number, holds: number[]): string | null | undefined => {
      const me = new ConsensusInstance({ statement: setup.statement, signer: setup.signers[member]!, verifier: setup.verifier })
      me.start(0)
      for (const i of holds) me.addAnswer(answerOf(setup, i, 7).wire, 0)
      for (const e of me.receive(setup.signers[p]!.peerId, (proposal as { data: Uint8Array }).data, 601)) {
        if (e.type !== 'send') continue
        const m = decodeMessage(e.data)
        if (m.kind === 'vote' && (m.body as { type: string }).type === 'prevote') return (m.body as { value: string | null }).value
      }
      return undefined
    }
    expect(prevoteOf(full, [0, 1, 2, 3])).toBeNull() // holds the omitted answer: nil
    expect(prevoteOf(partial, [p, partial])).toMatch(/^[0-9a-f]{64}$/) // holds nothing omitted: the value
  })

})

describe('consensus: safety and liveness under Byzantine members (property)', () => {
  const behaviours: Behaviour[] = ['silent', 'equivocate', 'double-vote', 'forge', 'junk']
  const scenario = fc.record({
    n: fc.integer({ min: 4, max: 7 }),
    seed: fc.integer({ min: 1, max: 1_000_000 }),
    drop: fc.double({ min: 0, max: 0.5, noNaN: true }),
    gstMs: fc.integer({ min: 0, max: 5000 }),
    duplicate: fc.double({ min: 0, max: 0.3, noNaN: true }),
    bad: fc.array(fc.constantFrom(...behaviours), { minLength: 2, maxLength: 2 }),
    split: fc.boolean()
  })

  it('no two honest members commit different values; every certificate verifies; all honest members commit after GST', () => {
    let runs = 0
    let committedAnswers = 0
    fc.assert(fc.property(scenario, ({ n, seed, drop, gstMs, duplicate, bad, split }) => {
      const setup = setupCommittee(n, seed)
      // f Byzantine members with less than 1/3 of the power (equal powers: f = floor((n − 1) / 3)).
      const f = Math.floor((n - 1) / 3)
      const roles: Behaviour[] = Array.from({ length: n }, (_, i) => (i >= n - f ? bad[i % 2]! : 'honest'))
      const answers = Array.from({ length: n }, (_, i) => (split && i % 2 === 1 ? 2 : 1))
      const result = runCommittee(setup, { seed, dropBeforeGst: drop, gstMs, deltaMs: 50, untilMs: gstMs + 120_000, behaviours: roles, answers, duplicate })
      runs++
      const honest = result.decided.filter((_, i) => roles[i] === 'honest')
      expect(sameDecision(honest)).toBe(true)
      expect(honest.every(c => c !== undefined)).toBe(true)
      for (const c of honest) expect(verifyCertificate(c!, setup.verifier)).toMatchObject({ ok: true })
      if (honest[0]!.outcome.kind === 'answer') committedAnswers++
    }), { numRuns: Number(process.env.CONSENSUS_RUNS ?? 1000) })
    expect(runs).toBeGreaterThanOrEqual(1000)
    expect(committedAnswers).toBeGreaterThan(runs / 4) // not just escalations
  }, 120_000)
})

describe('consensus: a member left behind in an old round', () => {
  // FC_SEED=4242 found these parameters (its precommits were lost before GST) under the helper's
  // earlier scheduler; on the shared one (sim/boundary.ts) they give another schedule of that kind.
  it('is helped out by the others (parameters FC_SEED=4242 found: heavy loss before GST, one member silent)', () => {
    const setup = setupCommittee(4, 962154)
    const roles: Behaviour[] = ['honest', 'honest', 'honest', 'silent']
    const result = runCommittee(setup, { seed: 962154, dropBeforeGst: 0.41445194021798676, gstMs: 3249, deltaMs: 50, untilMs: 3249 + 120_000, behaviours: roles, answers: [1, 1, 1, 1], duplicate: 0 })
    const honest = result.decided.filter((_, i) => roles[i] === 'honest')
    expect(honest.every(c => c !== undefined), result.rounds.join(' ')).toBe(true)
    expect(sameDecision(honest)).toBe(true)
  })
})

describe('consensus: certificates offline (real Ed25519)', () => {
  let setup: CommitteeSetup
  let certificate: Certificate

  it('a committee with real keys commits; the certificate round-trips through CBOR and JSON and verifies', async () => {
    const signers = await makeSigners(4)
    const members = votingPowers(new Map(signers.map(s => [s.peerId, 0.8])))
    const agents = signers.map(s => `${s.peerId}/exec`)
    const statement = signCommittee({
      v: 1, subtask: 'task-real/s1', inputHash: INPUT_HASH, requester: signers[0]!.peerId, members,
      executors: agents.map(agent => ({ agent, reputation: 0.6, accuracy: 0.7 })).sort((a, b) => (a.agent < b.agent ? -1 : 1)),
      rule: { kind: 'json' }, aggregation: { confidenceCap: 0.9, shrink: 0.5, margin: 0.2, coverage: 2 / 3, minStanding: 0.1 }
    }, signers[0]!)
    setup = { statement, signers, verifier: ed25519, agents }
    const result = runCommittee(setup, calm([{ sum: 3 }, { sum: 3 }, { sum: 3 }, { sum: 3 }]))
    certificate = result.decided[2]!
    expect(certificate.outcome).toEqual({ kind: 'answer', answer: { sum: 3 } })
    const again = decodeCertificate(encodeCertificate(certificate))
    const viaJson = certificateFromJson(JSON.parse(JSON.stringify(certificateToJson(certificate))))
    for (const c of [certificate, again, viaJson]) {
      const check = verifyCertificate(c, ed25519)
      expect(check.ok).toBe(true)
      if (check.ok) expect(check.summary.signatureChecks).toBe(1 + 4 + c.precommits.length)
    }
  })

  it('says exactly what is wrong with a tampered certificate', async () => {
    const problems = (c: Certificate): string[] => {
      const check = verifyCertificate(c, ed25519)
      return check.ok ? [] : check.problems
    }
    expect(problems({ ...certificate, outcome: { kind: 'answer', answer: { sum: 4 } } }).join('\n')).toMatch(/precommit 0: is for value .*not the committed value/)
    expect(problems({ ...certificate, precommits: certificate.precommits.slice(0, 2) }).join('\n')).toMatch(/precommits carry \d+ of \d+ voting power; more than 2\/3/)
    expect(problems({ ...certificate, precommits: [certificate.precommits[0]!, certificate.precommits[0]!, certificate.precommits[1]!] }).join('\n')).toMatch(/a second precommit by/)
    expect(problems({ ...certificate, evidence: certificate.evidence.slice(1) }).join('\n')).toMatch(/not the committed value|covers/)
    expect(problems({ ...certificate, round: certificate.round + 1 }).join('\n')).toMatch(/is for round \d+, the certificate's is/)
    const flipped = new Uint8Array(certificate.statement)
    flipped[flipped.byteLength - 5]! ^= 1
    expect(problems({ ...certificate, statement: flipped }).join('\n')).toMatch(/committee statement/)
    // A precommit signed by a non-member, and a vote forged with the wrong key.
    const [outsider] = await makeSigners(1)
    const good = decodeMessage(certificate.precommits[0]!).body as { instance: string, value: string }
    const stranger = signVote({ instance: good.instance, round: certificate.round, type: 'precommit', value: good.value }, outsider!)
    expect(problems({ ...certificate, precommits: [...certificate.precommits, stranger.wire] }).join('\n')).toMatch(new RegExp(`precommit ${certificate.precommits.length}: ${outsider!.peerId} is not a committee member`))
    const wrongKey = encodeCanonical({ t: 'vote', body: stranger.bodyBytes, sig: certificate.precommits[0]!.slice(-64) })
    expect(problems({ ...certificate, precommits: [wrongKey] }).join('\n')).toMatch(/precommit 0: (bad signature by|signature must be)/)
    const forged = encodeCanonical({ t: 'vote', body: new Uint8Array(0), sig: new Uint8Array(64) })
    expect(problems({ ...certificate, precommits: [forged] }).join('\n')).toMatch(/precommit 0: vote body is not canonical CBOR/)
    expect(() => certificateFromJson({ format: 'x' })).toThrow(/unknown field|missing/)
  })
})

describe('consensus: equivocation evidence', () => {
  it('two conflicting signed votes are a proof anyone can check; every peer that hears it cuts the host to zero', () => {
    const setup = setupCommittee(4, 7)
    const [a, b] = [setup.signers[2]!, setup.signers[3]!]
    const instance = 'ef'.repeat(32)
    const yes = signVote({ instance, round: 1, type: 'prevote', value: 'ab'.repeat(32) }, a)
    const no = signVote({ instance, round: 1, type: 'prevote', value: null }, a)
    const proof = encodeEquivocation(yes.wire, no.wire)
    expect(checkEquivocation(proof, setup.verifier)).toMatchObject({ host: a.peerId, instance, round: 1 })
    expect(encodeEquivocation(no.wire, yes.wire)).toEqual(proof) // order-independent
    // Not proof: the same value twice, two voters, another round, a forged signature, two answers.
    const again = signVote({ instance, round: 1, type: 'prevote', value: 'ab'.repeat(32) }, a)
    expect(() => checkEquivocation(encodeEquivocation(yes.wire, again.wire), setup.verifier)).toThrow(/same/)
    expect(() => checkEquivocation(encodeEquivocation(yes.wire, signVote({ instance, round: 1, type: 'prevote', value: null }, b).wire), setup.verifier)).toThrow(/one voter/)
    expect(() => checkEquivocation(encodeEquivocation(yes.wire, signVote({ instance, round: 2, type: 'prevote', value: null }, a).wire), setup.verifier)).toThrow(/same instance, round/)
    const forged = encodeCanonical({ t: 'vote', body: no.bodyBytes, sig: b.sign(no.bodyBytes) })
    expect(() => checkEquivocation(encodeEquivocation(yes.wire, forged), setup.verifier)).toThrow(/not signed by/)
    expect(() => checkEquivocation(encodeEquivocation(answerOf(setup, 2, 1).wire, answerOf(setup, 2, 2).wire), setup.verifier)).toThrow()

    const peers = [0, 1].map(i => new ConsensusPeer({ signer: setup.signers[i]!, verifier: setup.verifier }))
    const heard = peers[0]!.gossip('x', proof, 0)
    expect(heard).toContainEqual({ type: 'broadcast', data: proof }) // passed on once
    expect(peers[0]!.gossip('y', proof, 0).some(e => e.type === 'broadcast')).toBe(false) // not twice
    peers[1]!.gossip('x', proof, 0)
    for (const p of peers) expect(p.book.reputation(`${a.peerId}/exec`)).toBe(0)
    expect(JSON.stringify(peers[0]!.book.toJSON())).toBe(JSON.stringify(peers[1]!.book.toJSON()))
  })
})

describe('consensus: a peer\'s instances (ConsensusPeer)', () => {
  /** Delivers `send` effects among the peers until quiet, dropping what `drop` says; timers fire as due. */
  function pump (peers: Map<string, ConsensusPeer>, queue: Array<{ from: string, effects: ReturnType<ConsensusPeer['tick']> }>, drop: (m: { to: string, data: Uint8Array }) => boolean = () => false): number {
    let now = 0
    for (let guard = 0; guard < 200 && queue.length > 0; guard++) {
      const { from, effects } = queue.shift()!
      for (const e of effects) {
        if (e.type === 'send' && !drop(e)) queue.push({ from: e.to, effects: peers.get(e.to)!.receive(from, e.data, ++now) })
      }
      if (queue.length === 0) for (const [id, p] of peers) queue.push({ from: id, effects: p.tick(now += 1000) })
      if ([...peers.values()].every(p => p.certificateIds().length > 0)) break
    }
    return now
  }

  it('a member that missed the start asks for the statement and commits with the others', () => {
    const setup = setupCommittee(4, 11)
    const peers = new Map(setup.signers.map(s => [s.peerId, new ConsensusPeer({ signer: s, verifier: setup.verifier })]))
    const requester = peers.get(setup.signers[0]!.peerId)!
    const answers = [0, 1, 2, 3].map(i => answerOf(setup, i, 5).wire)
    const { effects } = requester.start(setup.statement.wire, answers, 0)
    const late = setup.signers[3]!.peerId
    let dropped = false
    pump(peers, [{ from: setup.signers[0]!.peerId, effects }], m => {
      if (dropped || m.to !== late || !Buffer.from(m.data).includes(Buffer.from('start'))) return false
      dropped = true // the requester's start to member 3 is lost
      return true
    })
    expect(dropped).toBe(true)
    for (const p of peers.values()) expect(p.certificateIds()).toHaveLength(1)
  })

  it('never starts an instance it took part in before (a restart), and limits unfinished instances per requester', () => {
    const setup = setupCommittee(4, 12)
    const joined: string[] = []
    const before = new ConsensusPeer({ signer: setup.signers[1]!, verifier: setup.verifier, onJoin: id => joined.push(id) })
    before.start(setup.statement.wire, [], 0)
    expect(joined).toHaveLength(1)
    const restarted = new ConsensusPeer({ signer: setup.signers[1]!, verifier: setup.verifier, joined })
    expect(() => restarted.start(setup.statement.wire, [], 0)).toThrow(/already took part in instance/)
    // A requester flooding statements is cut off at its quota; nothing unfinished is dropped.
    const capped = new ConsensusPeer({ signer: setup.signers[1]!, verifier: setup.verifier, maxPerRequester: 2 })
    for (const n of [1, 2]) capped.start(setupCommittee(4, 12, { subtask: `flood/${n}` }).statement.wire, [], 0)
    expect(() => capped.start(setupCommittee(4, 12, { subtask: 'flood/3' }).statement.wire, [], 0)).toThrow(/already has 2 unfinished instances/)
  })

  it('a requester that gives up on its own stalled instances frees its quota, and never votes in them again', () => {
    const stalled = [1, 2].map(n => setupCommittee(4, 12, { subtask: `stall/${n}` }).statement) // member 0 (the requester) signs each
    const { signers, verifier } = setupCommittee(4, 12)
    const requester = new ConsensusPeer({ signer: signers[0]!, verifier, maxPerRequester: 2 })
    const ids = stalled.map(st => requester.start(st.wire, [], 0).instance)
    const next = setupCommittee(4, 12, { subtask: 'stall/3' }).statement
    expect(() => requester.start(next.wire, [], 0)).toThrow(/already has 2 unfinished instances/)
    // A member cannot abandon someone else's instance; the requester can abandon its own.
    const member = new ConsensusPeer({ signer: signers[1]!, verifier })
    member.start(stalled[0]!.wire, [], 0)
    member.abandon(ids[0]!)
    expect(member.instance(ids[0]!)).toBeDefined()
    requester.abandon(ids[0]!)
    expect(requester.instance(ids[0]!)).toBeUndefined()
    expect(() => requester.start(next.wire, [], 0)).not.toThrow()
    expect(() => requester.start(stalled[0]!.wire, [], 0)).toThrow(/already took part in instance/)
  })
})
