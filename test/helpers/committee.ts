/**
 * A committee on a simulated network, for consensus tests: fast stand-in signatures, the
 * simulator's engine and fault scheduler dropping, delaying and reordering messages until a
 * "global stabilisation time" (GST) and delivering within a bound after it, and Byzantine
 * members with scripted misbehaviour (sim/byzantine.ts).
 */
import { createHash } from 'node:crypto'
import { peerIdFromEd25519, type Signer, type Verifier } from '../../protocols/identity.ts'
import { mulberry32 } from '../../protocols/random.ts'
import { signAnswer, type SignedAnswer } from '../../protocols/consensus/answer.ts'
import { ConsensusInstance, type InstanceEvent } from '../../protocols/consensus/bft.ts'
import { signCommittee, votingPowers, type SignedCommittee } from '../../protocols/consensus/committee.ts'
import { rewrite, type ByzantineBehaviour } from '../../sim/byzantine.ts'
import { atBoundary, type BoundaryFault } from '../../sim/boundary.ts'
import { Engine } from '../../sim/engine.ts'
import type { Certificate } from '../../protocols/consensus/certificate.ts'
import type { Effect } from '../../protocols/effects.ts'
import { encodeCanonical } from '../../protocols/cbor.ts'
import type { EquivalenceRule, Json } from '../../protocols/consensus/types.ts'
import type { Embed } from '../../protocols/consensus/validity.ts'

/**
 * Keyed-hash signatures: unforgeable inside a test (only the holder of a signer has its secret)
 * and ~50× cheaper than Ed25519, so property tests can run thousands of schedules. Peer ids are
 * real Ed25519-shaped ids built from a hash of the secret.
 */
export function fastSigners (n: number, seed: number): { signers: Signer[], verifier: Verifier } {
  const rand = mulberry32(seed)
  const secrets = new Map<string, Uint8Array>()
  const signers: Signer[] = []
  for (let i = 0; i < n; i++) {
    const secret = Uint8Array.from({ length: 32 }, () => Math.floor(rand() * 256))
    const peerId = peerIdFromEd25519(new Uint8Array(createHash('sha256').update(secret).digest()))
    secrets.set(peerId, secret)
    signers.push({ peerId, sign: message => mac(secret, message) })
  }
  const verifier: Verifier = {
    verify: (peerId, message, signature) => {
      const secret = secrets.get(peerId)
      if (secret === undefined || signature.byteLength !== 64) return false
      const expected = mac(secret, message)
      return expected.every((b, i) => b === signature[i])
    }
  }
  return { signers, verifier }
}

function mac (secret: Uint8Array, message: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha512').update(secret).update(message).digest())
}

export const INPUT_HASH = 'ab'.repeat(32)

export interface CommitteeSetup {
  statement: SignedCommittee
  signers: Signer[]
  verifier: Verifier
  /** Agent id of member i's executor. */
  agents: string[]
}

/** Members 0..n-1 each host one executor `<peer>/exec`; member 0 is the requester. */
export function setupCommittee (n: number, seed: number, options: { reputations?: number[], subtask?: string, rule?: EquivalenceRule } = {}): CommitteeSetup {
  const { signers, verifier } = fastSigners(n, seed)
  const reputations = options.reputations ?? signers.map(() => 0.8)
  const members = votingPowers(new Map(signers.map((s, i) => [s.peerId, reputations[i]!])))
  const agents = signers.map(s => `${s.peerId}/exec`)
  const executors = agents.map(agent => ({ agent, reputation: 0.6, accuracy: 0.7 })).sort((a, b) => (a.agent < b.agent ? -1 : 1))
  const statement = signCommittee({
    v: 1,
    subtask: options.subtask ?? `task-${seed}/s1`,
    inputHash: INPUT_HASH,
    requester: signers[0]!.peerId,
    members,
    executors,
    rule: options.rule ?? { kind: 'json' },
    aggregation: { confidenceCap: 0.9, shrink: 0.5, margin: 0.2, coverage: 2 / 3, minStanding: 0.1 }
  }, signers[0]!)
  return { statement, signers, verifier, agents }
}

export function answerOf (setup: CommitteeSetup, member: number, answer: Json, confidence?: number): SignedAnswer {
  return signAnswer({ v: 1, subtask: setup.statement.body.subtask, inputHash: INPUT_HASH, agent: setup.agents[member]!, answer, ...(confidence === undefined ? {} : { confidence }) }, setup.signers[member]!)
}

/**
 * The adversaries of sim/byzantine.ts, plus `forge`: an answer "from" an honest executor signed
 * with its own key.
 */
export type Behaviour = 'honest' | 'forge' | ByzantineBehaviour

export interface RunOptions {
  seed: number
  /** Before GST messages are dropped with this probability and delayed up to `gstMs`. */
  dropBeforeGst: number
  gstMs: number
  /** After GST every message arrives within this many ms (below the timeouts). */
  deltaMs: number
  /** Stop here (virtual ms). */
  untilMs: number
  behaviours: Behaviour[]
  /** What each member's executor answers (an equivocating member also signs `answer + 1`). */
  answers: Json[]
  /** Duplicate this share of messages. */
  duplicate?: number
  /** For the embedding rule. */
  embed?: Embed
  /** Sees every delivery (debugging). */
  onDeliver?: (at: number, from: string, to: string, data: Uint8Array) => void
}

export interface RunResult {
  decided: Array<Certificate | undefined>
  /** Where each member ended: round and step. */
  rounds: string[]
  events: InstanceEvent[]
  messages: number
  endedAt: number
}

/**
 * Runs one instance to the end on a simulated network; `decided[i]` is member i's certificate.
 * Partial synchrony from the simulator's own fault scheduler (sim/boundary.ts) and event engine
 * (sim/engine.ts): a link takes 1 + U[0, deltaMs) ms; before GST a message is dropped with
 * `dropBeforeGst` and otherwise delayed up to `gstMs` more; duplicates at any time.
 */
export function runCommittee (setup: CommitteeSetup, o: RunOptions): RunResult {
  const rand = mulberry32(o.seed)
  const ids = setup.signers.map(s => s.peerId)
  const index = new Map(ids.map((id, i) => [id, i]))
  const instances = setup.signers.map(signer => new ConsensusInstance({ statement: setup.statement, signer, verifier: setup.verifier, ...(o.embed === undefined ? {} : { embed: o.embed }) }))
  const gstS = o.gstMs / 1000
  const faults: BoundaryFault[] = [
    { kind: 'drop', rate: o.dropBeforeGst, at: 0, until: gstS },
    { kind: 'delay', rate: 1, extraMs: [0, o.gstMs], at: 0, until: gstS },
    { kind: 'duplicate', rate: o.duplicate ?? 0, at: 0, until: Infinity }
  ]
  const engine = new Engine()
  /** Each member's pending wake-up (a machine keeps one; an older one is stale). */
  const timers: number[] = ids.map(() => Infinity)
  const events: InstanceEvent[] = []
  let messages = 0
  const honestDecided = (): boolean => instances.every((inst, i) => o.behaviours[i] !== 'honest' || inst.decided !== undefined)
  const after = (): void => { if (honestDecided()) engine.halt() }

  const DELIVER = engine.kind((to, payload) => {
    const m = payload as { from: string, data: Uint8Array }
    o.onDeliver?.(engine.now, m.from, ids[to]!, m.data)
    apply(to, m.from === ids[to] ? instances[to]!.addAnswer(m.data, engine.now) : instances[to]!.receive(m.from, m.data, engine.now))
    after()
  })
  const WAKE = engine.kind(i => {
    if (timers[i] !== engine.now) return
    timers[i] = Infinity
    apply(i, instances[i]!.tick(engine.now))
    after()
  })
  const send = (from: string, to: string, data: Uint8Array): void => {
    messages++
    const fate = atBoundary(faults, engine.now, rand)
    if (fate === undefined) return
    for (let c = 0; c < fate.copies; c++) engine.at(engine.now + 1 + Math.floor(rand() * o.deltaMs + fate.extraMs), DELIVER, index.get(to)!, { from, data })
  }
  const apply = (i: number, effects: Array<Effect<InstanceEvent>>): void => {
    for (const e of effects) {
      if (e.type === 'timer') { timers[i] = e.at; engine.at(e.at, WAKE, i) }
      else if (e.type === 'event') events.push(e.event)
      else if (e.type === 'send') outgoing(i, e.to, e.data)
    }
  }
  // A Byzantine member runs the honest code but rewrites what it sends (sim/byzantine.ts).
  const outgoing = (i: number, to: string, data: Uint8Array): void => {
    const behaviour = o.behaviours[i]!
    if (behaviour === 'honest' || behaviour === 'forge') return send(ids[i]!, to, data)
    const ctx = { me: setup.signers[i]!, firstHalf: (index.get(to)! % 2) === 0, statement: setup.statement.body, answers: instances[i]!.answers() }
    for (const out of rewrite(behaviour, data, ctx)) send(ids[i]!, to, out)
  }

  for (let i = 0; i < ids.length; i++) apply(i, instances[i]!.start(0))
  // Executors answer at random times; a Byzantine one signs two different answers.
  for (let i = 0; i < ids.length; i++) {
    const answer = answerOf(setup, i, o.answers[i]!, 0.7)
    if (o.behaviours[i] === 'equivocate' || o.behaviours[i] === 'double-vote') {
      const other = answerOf(setup, i, typeof o.answers[i] === 'number' ? (o.answers[i] as number) + 1 : 'other', 1)
      ids.forEach((to, j) => { if (j !== i) send(ids[i]!, to, j % 2 === 0 ? answer.wire : other.wire) })
    } else if (o.behaviours[i] === 'forge') {
      // Forged evidence: an answer "from" an honest executor, signed with the forger's key.
      const victim = (i + 1) % ids.length
      const forged = signAnswerAs(setup, i, victim)
      ids.forEach((to, j) => { if (j !== i) send(ids[i]!, to, forged) })
      apply(i, instances[i]!.addAnswer(answer.wire, 0))
    } else if (o.behaviours[i] !== 'silent') {
      engine.at(Math.floor(rand() * 200), DELIVER, i, { from: ids[i]!, data: answer.wire })
    }
  }

  if (!honestDecided()) engine.run(o.untilMs)
  return { decided: instances.map(inst => inst.decided), rounds: instances.map(inst => `${inst.round}:${inst.step}`), events, messages, endedAt: engine.now }
}

/** An answer claiming to be from `victim`'s executor, signed with `forger`'s key (a bad signature). */
function signAnswerAs (setup: CommitteeSetup, forger: number, victim: number): Uint8Array {
  const real = answerOf(setup, victim, 'forged')
  return encodeCanonical({ t: 'answer', body: real.bodyBytes, sig: setup.signers[forger]!.sign(real.bodyBytes) })
}
