/**
 * A certificate: the committed outcome, the signed answers it aggregates, the requester's signed
 * committee statement, and the precommits of members holding more than 2/3 of its voting power,
 * all for one round and one value. Anyone can check one offline with `verifyCertificate`, which
 * says exactly what is wrong with a bad one: it recomputes the value id and the aggregation from
 * the evidence and checks every signature and the quorum.
 *
 * On the wire (gossip, files) a certificate is canonical CBOR; `certificateToJson` gives the
 * JSON form `agentmesh verify` reads (byte strings as base64url).
 */
import { fromString, toString } from 'uint8arrays'
import { decodeCanonical, encodeCanonical } from '../cbor.ts'
import type { Verifier } from '../identity.ts'
import { decodeCommittee, instanceId, isQuorum, totalPower, verifyCommittee, type CommitteeBody, type SignedCommittee } from './committee.ts'
import { groupAnswers } from './equivalence.ts'
import { canonicalJson } from '../hash.ts'
import { decodeAnswer, type SignedAnswer } from './answer.ts'
import { decodeMessage, validateOutcome, valueId, type Outcome, type VoteBody } from './messages.ts'
import { ConsensusError, consensusLimits, int, record, verifySigned, wireHash } from './signed.ts'
import { invalidReason, type Embed } from './validity.ts'

export interface Certificate {
  /** The requester's signed committee statement. */
  statement: Uint8Array
  round: number
  outcome: Outcome
  /** Signed answers, sorted by hash. */
  evidence: Uint8Array[]
  /** Signed precommit votes for this round and value. */
  precommits: Uint8Array[]
}

export interface CertificateSummary {
  instance: string
  subtask: string
  inputHash: string
  requester: string
  outcome: Outcome
  /** Agents whose answer is in the committed class (agreed) or not (disagreed); for reputation. */
  agreed: string[]
  disagreed: string[]
  /** Power of the valid precommits, and the committee's total. */
  power: number
  total: number
  /** Signature checks the verification made (statement, answers, precommits). */
  signatureChecks: number
  /**
   * Agents whose answer also carries their own signature (an MQTT agent with a key), with that key
   * (base64url of the raw Ed25519 key): compare it with the key you know the agent by.
   */
  endorsements: Record<string, string>
}

export type CertificateCheck = { ok: true, summary: CertificateSummary } | { ok: false, problems: string[] }

/** Canonical CBOR of the certificate; its hash is the certificate's id. */
export function encodeCertificate (c: Certificate): Uint8Array {
  return encodeCanonical({ t: 'certificate', statement: c.statement, round: c.round, outcome: c.outcome, evidence: c.evidence, precommits: c.precommits })
}

export function certificateId (c: Certificate): string {
  return wireHash(encodeCertificate(c))
}

export function decodeCertificate (bytes: Uint8Array): Certificate {
  if (bytes.byteLength > 2 * consensusLimits.maxMessageBytes) throw new ConsensusError(`certificate is ${bytes.byteLength} bytes, limit ${2 * consensusLimits.maxMessageBytes}`)
  let value: unknown
  try {
    value = decodeCanonical(bytes)
  } catch (err) {
    throw new ConsensusError(`certificate is not canonical CBOR: ${(err as Error).message}`)
  }
  return certificateFields(value, b => {
    if (!(b instanceof Uint8Array)) throw new ConsensusError('expected bytes')
    return b
  })
}

export function certificateToJson (c: Certificate): Record<string, unknown> {
  const b64 = (b: Uint8Array): string => toString(b, 'base64url')
  return { format: 'agentmesh-certificate/1', statement: b64(c.statement), round: c.round, outcome: c.outcome, evidence: c.evidence.map(b64), precommits: c.precommits.map(b64) }
}

export function certificateFromJson (value: unknown): Certificate {
  const o = record(value, 'certificate', ['format', 'statement', 'round', 'outcome', 'evidence', 'precommits'])
  if (o.format !== 'agentmesh-certificate/1') throw new ConsensusError(`certificate format must be "agentmesh-certificate/1", got ${JSON.stringify(o.format)}`)
  const { format: _format, ...rest } = o
  return certificateFields({ t: 'certificate', ...rest }, b => {
    if (typeof b !== 'string' || !/^[A-Za-z0-9_-]*$/.test(b)) throw new ConsensusError('expected a base64url string')
    return fromString(b, 'base64url')
  })
}

function certificateFields (value: unknown, bytes: (b: unknown) => Uint8Array): Certificate {
  const o = record(value, 'certificate', ['t', 'statement', 'round', 'outcome', 'evidence', 'precommits'])
  if (o.t !== 'certificate') throw new ConsensusError('not a certificate')
  const list = (x: unknown, what: string, max: number): Uint8Array[] => {
    if (!Array.isArray(x) || x.length > max) throw new ConsensusError(`certificate ${what} must be a list of at most ${max}`)
    return x.map((b, i) => {
      try {
        return bytes(b)
      } catch (err) {
        throw new ConsensusError(`certificate ${what} ${i}: ${(err as Error).message}`)
      }
    })
  }
  let statement: Uint8Array
  try {
    statement = bytes(o.statement)
  } catch (err) {
    throw new ConsensusError(`certificate statement: ${(err as Error).message}`)
  }
  return {
    statement,
    round: int(o.round, 'certificate round', 0, consensusLimits.maxRounds),
    // Its shape here (an unchecked one let a deep outcome overflow the stack in verifyCertificate);
    // that it is what the evidence aggregates to, in verifyCertificate.
    outcome: validateOutcome(o.outcome),
    evidence: list(o.evidence, 'evidence', consensusLimits.maxExecutors),
    precommits: list(o.precommits, 'precommits', consensusLimits.maxMembers)
  }
}

/**
 * Checks a certificate completely and offline. Returns every problem found (not just the first),
 * or a summary of what it proves.
 */
export function verifyCertificate (c: Certificate, verifier: Verifier, embed?: Embed): CertificateCheck {
  const problems: string[] = []
  let checks = 0
  let statement: SignedCommittee
  try {
    statement = decodeCommittee(c.statement)
  } catch (err) {
    return { ok: false, problems: [`committee statement: ${(err as Error).message}`] }
  }
  checks++
  if (!verifyCommittee(statement, verifier)) problems.push(`committee statement: bad signature by the requester ${statement.body.requester}`)
  const instance = instanceId(statement)
  const s = statement.body

  const answers: SignedAnswer[] = []
  c.evidence.forEach((wire, i) => {
    try {
      answers.push(decodeAnswer(wire))
    } catch (err) {
      problems.push(`evidence ${i}: ${(err as Error).message}`)
    }
  })
  const hashes = answers.map(a => wireHash(a.wire))
  if (hashes.some((h, i) => i > 0 && hashes[i - 1]! >= h)) problems.push('evidence is not sorted by hash, or repeats an answer')
  let id: string | undefined
  try {
    id = valueId(c.outcome, hashes)
  } catch (err) {
    problems.push(`outcome: ${(err as Error).message}`)
  }
  if (problems.length === 0) {
    checks += answers.length
    const reason = invalidReason(s, { outcome: c.outcome, evidence: answers, id: id! }, verifier, embed)
    if (reason !== undefined) problems.push(`value: ${reason}`)
  }

  const power = new Map(s.members.map(m => [m.id, m.power]))
  const total = totalPower(s.members)
  const voters = new Set<string>()
  let committed = 0
  c.precommits.forEach((wire, i) => {
    let vote: VoteBody
    try {
      const message = decodeMessage(wire)
      if (message.kind !== 'vote') throw new ConsensusError('is a proposal, not a vote')
      vote = message.body as VoteBody
      checks++
      if (!verifySigned(message, vote.voter, verifier)) throw new ConsensusError(`bad signature by ${vote.voter}`)
    } catch (err) {
      problems.push(`precommit ${i}: ${(err as Error).message}`)
      return
    }
    if (vote.type !== 'precommit') return void problems.push(`precommit ${i}: is a ${vote.type}`)
    if (vote.instance !== instance) return void problems.push(`precommit ${i}: is for another instance`)
    if (vote.round !== c.round) return void problems.push(`precommit ${i}: is for round ${vote.round}, the certificate's is ${c.round}`)
    if (vote.value !== id) return void problems.push(`precommit ${i}: is for ${vote.value === null ? 'nil' : `value ${vote.value.slice(0, 12)}…`}, not the committed value`)
    if (!power.has(vote.voter)) return void problems.push(`precommit ${i}: ${vote.voter} is not a committee member`)
    if (voters.has(vote.voter)) return void problems.push(`precommit ${i}: a second precommit by ${vote.voter}`)
    voters.add(vote.voter)
    committed += power.get(vote.voter)!
  })
  if (!isQuorum(committed, total)) problems.push(`precommits carry ${committed} of ${total} voting power; more than 2/3 (${Math.floor(2 * total / 3) + 1}) is required`)
  if (problems.length > 0) return { ok: false, problems }

  const committedClass = c.outcome.kind === 'answer' ? agreeing(s, answers, c.outcome, embed) : new Set<string>()
  const agents = answers.map(a => a.body.agent).sort()
  return {
    ok: true,
    summary: {
      instance,
      subtask: s.subtask,
      inputHash: s.inputHash,
      requester: s.requester,
      outcome: c.outcome,
      agreed: agents.filter(a => committedClass.has(a)),
      disagreed: agents.filter(a => !committedClass.has(a)),
      power: committed,
      total,
      signatureChecks: checks,
      endorsements: Object.fromEntries(answers.filter(a => a.body.endorsement !== undefined).map(a => [a.body.agent, toString(a.body.endorsement!.key, 'base64url')]))
    }
  }
}

/** Agents whose answers fall in the same class as the committed answer. */
function agreeing (s: CommitteeBody, answers: readonly SignedAnswer[], outcome: Outcome & { kind: 'answer' }, embed?: Embed): Set<string> {
  const classes = groupAnswers(answers.map(a => ({ agent: a.body.agent, answer: a.body.answer })), s.rule, embed)
  const target = canonicalJson(outcome.answer)
  const hit = classes.find(c => c.answers.some(x => canonicalJson(x) === target))
  return new Set(hit?.agents ?? [])
}
