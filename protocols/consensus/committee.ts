/**
 * The committee statement: the requester of a subtask fixes, and signs, everything a consensus
 * instance depends on — the members and their voting power, the executors and the standing
 * (reputation, accuracy) each answer is weighed with, the equivalence rule and the aggregation
 * settings. Every member then aggregates the same evidence to the same value, and a certificate
 * can be checked offline against the statement it carries. The instance id is the hash of the
 * signed statement, so two statements (say, from an equivocating requester) are two instances
 * whose votes never mix.
 *
 * Voting power comes from reputation, capped per member so that no one member holds 30% or more
 * of the power: one member can neither commit nor block alone, and a committee needs at least 4.
 */
import { oncePerArray } from '../cbor.ts'
import { type Signer, type Verifier, isEd25519PeerId } from '../identity.ts'
import { sha256Hex } from '../hash.ts'
import { agentId } from './answer.ts'
import { validateRule } from './equivalence.ts'
import { CONFIDENCE_BANDS } from './aggregate.ts'
import {
  ConsensusError, consensusLimits, decodeObject, HEX64, int, record, signObject, str, unitNumber, verifySigned, wireHash, type Signed
} from './signed.ts'
import type { AggregationConfig, EquivalenceRule, Standing } from './types.ts'

export interface Member { id: string, power: number }
export interface Executor extends Standing { agent: string }

export interface CommitteeBody {
  v: 1
  subtask: string
  inputHash: string
  /** Peer id of the requester, who signs the statement and is a member. */
  requester: string
  /** Sorted by id, distinct, at least 4. */
  members: Member[]
  /** Sorted by agent id, distinct. */
  executors: Executor[]
  rule: EquivalenceRule
  aggregation: StatementAggregation
}

export type SignedCommittee = Signed<CommitteeBody>

export const MIN_MEMBERS = 4
/** Largest share of the committee's power one member may hold after capping. */
export const MAX_MEMBER_SHARE = 0.3
const POWER_SCALE = 1000

export function signCommittee (body: CommitteeBody, signer: Signer): SignedCommittee {
  const checked = validateCommitteeBody(body)
  if (checked.requester !== signer.peerId) throw new ConsensusError(`${signer.peerId} cannot sign a committee statement for requester ${checked.requester}`)
  return signObject('committee', checked, signer)
}

export const decodeCommittee: (wire: Uint8Array) => SignedCommittee = oncePerArray(wire =>
  decodeObject(wire, ['committee'], (_kind, body) => validateCommitteeBody(body)))

export function verifyCommittee (statement: SignedCommittee, verifier: Verifier): boolean {
  return verifySigned(statement, statement.body.requester, verifier)
}

/** The instance id: hex SHA-256 of the signed statement. */
export function instanceId (statement: SignedCommittee): string {
  return wireHash(statement.wire)
}

export function totalPower (members: readonly Member[]): number {
  let total = 0
  for (const m of members) total += m.power
  return total
}

/** More than 2/3 of the total, in integers. */
export function isQuorum (power: number, total: number): boolean {
  return 3 * power > 2 * total
}

/** More than 1/3 of the total: at least one honest member is among them. */
export function isOneThird (power: number, total: number): boolean {
  return 3 * power > total
}

/**
 * Integer voting powers from reputations in 0..1 (at least 1 each), capped by water-filling so
 * no member holds MAX_MEMBER_SHARE or more of the total. Needs at least MIN_MEMBERS members.
 */
export function votingPowers (reputations: ReadonlyMap<string, number>): Member[] {
  if (reputations.size < MIN_MEMBERS) throw new ConsensusError(`a committee needs at least ${MIN_MEMBERS} members, got ${reputations.size}`)
  const raw = [...reputations].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([id, rep]) => ({
    id,
    power: Math.max(1, Math.round(POWER_SCALE * (Number.isFinite(rep) ? Math.min(1, Math.max(0, rep)) : 0)))
  }))
  // The largest cap c with c < MAX_MEMBER_SHARE × Σ min(p, c): feasible caps form an interval from 1.
  const fits = (c: number): boolean => c < MAX_MEMBER_SHARE * raw.reduce((s, m) => s + Math.min(m.power, c), 0)
  let lo = 1
  let hi = Math.max(...raw.map(m => m.power))
  if (!fits(hi)) {
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2)
      if (fits(mid)) lo = mid
      else hi = mid - 1
    }
    hi = lo
  }
  return raw.map(m => ({ id: m.id, power: Math.min(m.power, hi) }))
}

/**
 * Extra members drawn deterministically from `candidates` for a subtask: ordered by
 * SHA-256(subtask ‖ peer id), so anyone can check the draw and no requester can pick friends
 * unnoticed. Skips ids in `exclude`.
 */
export function drawMembers (subtask: string, candidates: readonly string[], count: number, exclude: ReadonlySet<string> = new Set()): string[] {
  return [...new Set(candidates)]
    .filter(id => !exclude.has(id))
    .map(id => ({ id, key: sha256Hex(`${subtask}\n${id}`) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .slice(0, Math.max(0, count))
    .map(x => x.id)
}

/** A statement's aggregation settings as signed: `minStanding` may be missing (older statements). */
export type StatementAggregation = Omit<AggregationConfig, 'minStanding'> & { minStanding?: number }

/** The settings a statement is decided with: a missing `minStanding` (an older statement) is 0. */
export function statementAggregation (a: StatementAggregation): AggregationConfig {
  return { ...a, minStanding: a.minStanding ?? 0 }
}

export function validateCommitteeBody (value: unknown): CommitteeBody {
  const o = record(value, 'committee', ['v', 'subtask', 'inputHash', 'requester', 'members', 'executors', 'rule', 'aggregation'])
  if (o.v !== 1) throw new ConsensusError(`committee version ${JSON.stringify(o.v)} is not supported (expected 1)`)
  const subtask = str(o.subtask, 'committee subtask', consensusLimits.maxSubtaskLength)
  const inputHash = str(o.inputHash, 'committee inputHash', 64, HEX64)
  const requester = peerId(o.requester, 'committee requester')
  if (!Array.isArray(o.members) || o.members.length < MIN_MEMBERS || o.members.length > consensusLimits.maxMembers) {
    throw new ConsensusError(`committee members must be a list of ${MIN_MEMBERS}..${consensusLimits.maxMembers}`)
  }
  const members = o.members.map((m, i) => {
    const r = record(m, `committee member ${i}`, ['id', 'power'])
    return { id: peerId(r.id, `committee member ${i} id`), power: int(r.power, `committee member ${i} power`, 1, POWER_SCALE) }
  })
  for (let i = 1; i < members.length; i++) {
    if (members[i - 1]!.id >= members[i]!.id) throw new ConsensusError('committee members must be sorted by id, without duplicates')
  }
  if (!members.some(m => m.id === requester)) throw new ConsensusError('the requester must be a committee member')
  const total = totalPower(members)
  const heaviest = members.reduce((a, m) => (m.power > a.power ? m : a))
  if (heaviest.power >= MAX_MEMBER_SHARE * total) throw new ConsensusError(`member ${heaviest.id} holds ${heaviest.power} of ${total} power, at or above the cap of ${MAX_MEMBER_SHARE * 100}%`)
  if (!Array.isArray(o.executors) || o.executors.length < 1 || o.executors.length > consensusLimits.maxExecutors) {
    throw new ConsensusError(`committee executors must be a list of 1..${consensusLimits.maxExecutors}`)
  }
  const executors = o.executors.map((e, i) => {
    const r = record(e, `executor ${i}`, ['agent', 'reputation', 'accuracy'], ['calibration'])
    const calibration = r.calibration === undefined ? undefined : calibrationCounts(r.calibration, `executor ${i} calibration`)
    return { agent: agentId(r.agent, `executor ${i} agent`), reputation: unitNumber(r.reputation, `executor ${i} reputation`), accuracy: unitNumber(r.accuracy, `executor ${i} accuracy`), ...(calibration !== undefined ? { calibration } : {}) }
  })
  for (let i = 1; i < executors.length; i++) {
    if (executors[i - 1]!.agent >= executors[i]!.agent) throw new ConsensusError('committee executors must be sorted by agent id, without duplicates')
  }
  let rule: EquivalenceRule
  try {
    rule = validateRule(o.rule)
  } catch (err) {
    throw new ConsensusError(`committee rule: ${(err as Error).message}`)
  }
  const a = record(o.aggregation, 'committee aggregation', ['confidenceCap', 'shrink', 'margin', 'coverage'], ['minStanding'])
  // minStanding is absent from statements made before it existed (kept absent: the body must
  // re-encode to its signed bytes); `statementAggregation` reads it as 0 for them.
  const aggregation: StatementAggregation = {
    confidenceCap: unitNumber(a.confidenceCap, 'aggregation confidenceCap'),
    shrink: unitNumber(a.shrink, 'aggregation shrink'),
    margin: unitNumber(a.margin, 'aggregation margin'),
    coverage: unitNumber(a.coverage, 'aggregation coverage'),
    ...(a.minStanding === undefined ? {} : { minStanding: unitNumber(a.minStanding, 'aggregation minStanding') })
  }
  if (aggregation.coverage < 2 / 3) throw new ConsensusError('aggregation coverage must be at least 2/3')
  return { v: 1, subtask, inputHash, requester, members, executors, rule, aggregation }
}

/** Right/wrong counts per confidence band: 2 × CONFIDENCE_BANDS.length non-negative integers. */
function calibrationCounts (value: unknown, what: string): number[] {
  if (!Array.isArray(value) || value.length !== 2 * CONFIDENCE_BANDS.length) throw new ConsensusError(`${what} must list ${2 * CONFIDENCE_BANDS.length} counts`)
  return value.map((n, j) => int(n, `${what}[${j}]`, 0, 1_000_000_000))
}

function peerId (value: unknown, what: string): string {
  const id = str(value, what, 64)
  if (!isEd25519PeerId(id)) throw new ConsensusError(`${what} is not an Ed25519 peer id`)
  return id
}
