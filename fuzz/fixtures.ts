/**
 * Valid encodings made with the project's own encoders and signers and real Ed25519 keys (derived
 * from fixed seeds, so every run mutates the same bytes): the starting points for mutation.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { ed25519Signer, ed25519Verifier } from '../node/network/crypto.ts'
import type { Signer, Verifier } from '../protocols/identity.ts'
import { schemaHash, signTombstone, signVcv, encodeDirect, type VcvBody } from '../protocols/capability/index.ts'
import { signAnswer, type SignedAnswer } from '../protocols/consensus/answer.ts'
import { signCommittee, votingPowers, instanceId } from '../protocols/consensus/committee.ts'
import { makeValue, signProposal, signVote } from '../protocols/consensus/messages.ts'
import { encodeCertificate, type Certificate } from '../protocols/consensus/certificate.ts'
import { encodeEquivocation } from '../protocols/consensus/evidence.ts'
import { outcomeOf } from '../protocols/consensus/validity.ts'
import { encodeRpc } from '../protocols/rpc/index.ts'
import { sha256 } from '../protocols/hash.ts'

export interface Fixtures {
  signers: Signer[]
  verifier: Verifier
  records: Uint8Array[]
  direct: Uint8Array[]
  answers: Uint8Array[]
  committees: Uint8Array[]
  messages: Uint8Array[]
  certificates: Uint8Array[]
  certificate: Certificate
  equivocations: Uint8Array[]
  rpc: Uint8Array[]
}

let cached: Promise<Fixtures> | undefined

export async function fixtures (): Promise<Fixtures> {
  cached ??= build()
  return await cached
}

const T0 = 1_700_000_000_000
const INPUT_HASH = 'ab'.repeat(32)

async function build (): Promise<Fixtures> {
  const signers: Signer[] = []
  for (let i = 0; i < 4; i++) signers.push(ed25519Signer(await generateKeyPairFromSeed('Ed25519', sha256(`agentmesh fuzz key ${i}`))))
  const verifier = ed25519Verifier()
  const [a, b] = signers as [Signer, Signer]

  const vcv = (host: Signer, name: string, version: number, extra: Partial<VcvBody> = {}): VcvBody => {
    const inputSchema = '{"type":"object","properties":{"expression":{"type":"string"}}}'
    const outputSchema = '{"type":"object"}'
    return {
      v: 1, agent: `${host.peerId}/${name}`, version, description: 'evaluates arithmetic expressions',
      skills: ['arithmetic', 'math'], inputSchema, outputSchema, schemaHash: schemaHash(inputSchema, outputSchema),
      embedding: null, cost: 0.5, latencyMs: 12.5, capacity: 4, policy: ['deterministic'], issuedAt: T0, expiresAt: T0 + 60_000, ...extra
    }
  }
  const vector = new Uint8Array(new Float32Array([0.25, -1.5, 3, 0]).buffer)
  const records = [
    signVcv(vcv(a, 'calc', 1), a).wire,
    signVcv(vcv(b, 'sort.v2', 7, { embedding: { model: 'hash-ngram-256@1', vector }, skills: [], policy: [] }), b).wire,
    signTombstone({ v: 1, agent: `${a.peerId}/calc`, version: 2, issuedAt: T0, expiresAt: T0 + 1000 }, a).wire
  ]
  const direct = [
    encodeDirect({ t: 'digest', entries: [[sha256('x').slice(0, 8), 1], [sha256('y').slice(0, 8), 9]] }),
    encodeDirect({ t: 'batch', items: records })
  ]

  const members = votingPowers(new Map(signers.map(s => [s.peerId, 0.8])))
  const agents = signers.map(s => `${s.peerId}/exec`)
  const executors = agents.map(agent => ({ agent, reputation: 0.6, accuracy: 0.7 })).sort((x, y) => (x.agent < y.agent ? -1 : 1))
  const statement = signCommittee({
    v: 1, subtask: 'task-1/s1', inputHash: INPUT_HASH, requester: a.peerId, members, executors,
    rule: { kind: 'json' }, aggregation: { confidenceCap: 0.9, shrink: 0.5, margin: 0.2, coverage: 2 / 3, minStanding: 0.1 }
  }, a)
  const signed: SignedAnswer[] = signers.map((s, i) => signAnswer({
    v: 1, subtask: 'task-1/s1', inputHash: INPUT_HASH, agent: agents[i]!, answer: { value: 42, note: ['x', null, true] }, confidence: 0.9
  }, s))
  const { outcome } = outcomeOf(statement.body, signed.map(x => x.body))
  const value = makeValue(outcome, signed)
  const instance = instanceId(statement)
  const prevotes = signers.map(s => signVote({ instance, round: 0, type: 'prevote', value: value.id }, s))
  const precommits = signers.map(s => signVote({ instance, round: 1, type: 'precommit', value: value.id }, s))
  const proposal0 = signProposal({ instance, round: 0, validRound: -1, outcome, evidence: value.evidence.map(x => x.wire), pol: [] }, a)
  const proposal1 = signProposal({ instance, round: 1, validRound: 0, outcome, evidence: value.evidence.map(x => x.wire), pol: prevotes.slice(0, 3).map(v => v.wire) }, b)
  const nil = signVote({ instance, round: 1, type: 'precommit', value: null }, b)
  const certificate: Certificate = { statement: statement.wire, round: 1, outcome, evidence: value.evidence.map(x => x.wire), precommits: precommits.slice(0, 3).map(v => v.wire) }
  const escalate = signProposal({ instance, round: 0, validRound: -1, outcome: { kind: 'escalate' }, evidence: [], pol: [] }, a)

  const rpc = [
    encodeRpc({ t: 'beacon', id: 1, agents: ['calc', 'sort'] }),
    encodeRpc({ t: 'beacon-reply', id: 1, states: [{ agent: 'calc', load: 0.5, queue: 2, latencyMs: 12.25, available: true }] }),
    encodeRpc({ t: 'execute', id: 2, agent: 'calc', input: { expression: '1+1', list: [1, 2.5, 'x'] }, deadlineMs: 5000 }),
    encodeRpc({ t: 'execute', id: 3, agent: 'calc', input: null, deadlineMs: 1, sign: { subtask: 'task-1/s1', inputHash: INPUT_HASH } }),
    encodeRpc({ t: 'result', id: 2, ok: true, output: { value: 2 }, confidence: 0.75, latencyMs: 3 }),
    encodeRpc({ t: 'result', id: 3, ok: true, output: 'x', confidence: null, latencyMs: 0, answer: signed[0]!.wire }),
    encodeRpc({ t: 'result', id: 4, ok: false, kind: 'timeout', error: 'took too long' }),
    encodeRpc({ t: 'cancel', id: 5 }),
    encodeRpc({ t: 'notify', id: 0, data: nil.wire })
  ]

  return {
    signers, verifier, records, direct,
    answers: signed.map(x => x.wire),
    committees: [statement.wire],
    messages: [proposal0.wire, proposal1.wire, prevotes[0]!.wire, precommits[2]!.wire, nil.wire, escalate.wire],
    certificates: [encodeCertificate(certificate)],
    certificate,
    equivocations: [encodeEquivocation(precommits[1]!.wire, nil.wire), encodeEquivocation(proposal0.wire, escalate.wire)],
    rpc
  }
}
