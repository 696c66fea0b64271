/**
 * The capability table: every VCV this peer has verified, as a pure state machine.
 *
 * Rules: a record counts only with a valid signature by the host named in its agent id; versions
 * only move forward; the same version with other content is equivocation (both signed copies are
 * kept as evidence and the host is flagged); entries leave at expiry or by a signed tombstone; on
 * connect, peers swap digests and push each other what is missing (anti-entropy).
 */
import { toString } from 'uint8arrays'
import { invariant } from '../assert.ts'
import { bytesEqual, oncePerArray } from '../cbor.ts'
import type { Effect } from '../effects.ts'
import { canonicalJson, sha256 } from '../hash.ts'
import { idWorkBits, type Signer, type Verifier } from '../identity.ts'
import { NewHostAdmission, type AdmissionBudgets } from './admission.ts'
import { gossipRecords } from './bundle.ts'
import { decodeDirect, directLimits, encodeDirect, type DigestEntry } from './direct.ts'
import { NAME_PATTERN, splitAgentId, validateVcvBody, ValidationError, WIRE_VERSION, type VcvBody } from './schema.ts'
import {
  decodeRecord, schemaHash, signTombstone, signVcv, verifyRecord,
  type SignedRecord, type SignedTombstone, type SignedVcv
} from './wire.ts'

/** What the local host says about one of its agents; the table turns it into signed VCVs. */
export interface LocalAgent {
  name: string
  description: string
  skills: string[]
  inputSchema: Record<string, unknown>
  outputSchema: Record<string, unknown>
  embedding?: { model: string, vector: Float32Array }
  costPerCall: number
  latencyMs: number
  capacity: number
  policy: string[]
}

export interface CapabilityTableInit {
  signer: Signer
  verifier: Verifier
  /** Uniform in [0, 1): picks the anti-entropy partner. Seeded in the simulator. */
  random: () => number
  /** Last version used per local agent name, as persisted by a previous run. */
  versions?: Record<string, number>
  /** Lifetime of a local VCV (default 60 s); it is re-issued after `refreshFraction` of it. */
  ttlMs?: number
  refreshFraction?: number
  /** How far in the future an issuedAt may lie (clock skew between hosts, default 30 s). */
  maxSkewMs?: number
  /** Period of anti-entropy with one random connected peer (default 15 s). */
  antiEntropyIntervalMs?: number
  /** Remote entries kept at most; past it new agents are ignored (default 100k). */
  maxEntries?: number
  /**
   * Agents one host may have in this table, live or withdrawn (default 32): a host signing
   * thousands of agents fills its own quota, not the table, and honest newcomers still get in.
   */
  maxAgentsPerHost?: number
  /** Timers never fire closer together than this (default 200 ms), so expiry work is batched. */
  tickFloorMs?: number
  /**
   * Proof of work a host's peer id must show (network file `idWorkBits`, default 0): records of a
   * cheaper host are rejected after two hashes, before any signature check.
   */
  minIdWorkBits?: number
  /**
   * How many hosts this table does not hold yet each neighbour may introduce (admission.ts);
   * false turns the bound off. Records restored from disk are not counted.
   */
  admission?: AdmissionBudgets | false
  /**
   * How long a record learned off-gossip waits before this peer republishes it (default 0: at
   * once). Waiting, with jitter (0.5-1.5 × this), lets the peer see whether others already gossip
   * it: one that arrives on gossip meanwhile is not republished (that message is forwarded
   * instead, see #receive). When a mesh forms, every peer
   * learns nearly every record from its neighbours' digests, and republishing all of them at once
   * multiplied gossip traffic by ~10 on 50 local peers.
   */
  republishDelayMs?: number
}

export type RemovalReason = 'expired' | 'withdrawn'

export type TableEvent =
  | { type: 'added', vcv: SignedVcv }
  | { type: 'updated', vcv: SignedVcv, previous: SignedVcv }
  | { type: 'removed', agent: string, reason: RemovalReason }
  | { type: 'advertised', vcv: SignedVcv }
  | { type: 'equivocation', host: string, evidence: [SignedVcv, SignedVcv] }
  | { type: 'rejected', from: string | undefined, reason: string }

/** accept: new and valid, forward it; ignore: valid or harmless but nothing new; reject: invalid, penalise the sender. */
export type Verdict = 'accept' | 'ignore' | 'reject'

export interface Outcome {
  verdict: Verdict
  reason?: string
  /**
   * The sender is flooding, though nothing it sent is invalid: `admission`, a new host past its
   * admission budget (an honest forwarder may relay a burst); `quota`, its own agents past its
   * quota (an honest host never advertises more than the network allows). Drivers count these
   * against the sender.
   */
  flood?: 'admission' | 'quota'
  effects: Array<Effect<TableEvent>>
}

type Via = 'gossip' | 'direct'

const MAX_EVIDENCE_PER_HOST = 16
/** The reason a record of a new host is ignored when its sender's admission budget is spent. */
export const OVER_ADMISSION = 'new host over the neighbour\'s admission budget (retried by anti-entropy)'
export const DEFAULT_MAX_AGENTS_PER_HOST = 32
/** How the reason for a new agent of a host at its quota starts. */
export const OVER_QUOTA = 'host over its quota'

export class CapabilityTable {
  readonly #signer: Signer
  readonly #verifier: Verifier
  readonly #random: () => number
  readonly #ttlMs: number
  readonly #refreshMs: number
  readonly #maxSkewMs: number
  readonly #aeIntervalMs: number
  readonly #maxEntries: number
  readonly #maxAgentsPerHost: number
  readonly #tickFloorMs: number
  readonly #minIdWorkBits: number
  readonly #admission: NewHostAdmission | undefined
  /** This peer's own budget for republishing hosts new to it (the one its neighbours grant it). */
  readonly #republish: NewHostAdmission | undefined

  readonly #entries = new Map<string, SignedVcv>()
  readonly #tombstones = new Map<string, SignedTombstone>()
  /** SHA-256 of the wire bytes of every stored record: an exact duplicate is dropped before any decoding. */
  readonly #stored = new Set<string>()
  readonly #evidence = new Map<string, Array<[SignedVcv, SignedVcv]>>()
  readonly #local = new Map<string, LocalAgent>()
  readonly #versions = new Map<string, number>()
  readonly #peers = new Set<string>()
  /** Agent ids held per host, live or withdrawn: what the per-host quota counts. */
  readonly #perHost = new Map<string, number>()
  readonly #republishDelayMs: number
  /** Records learned off-gossip, by wire key, waiting to be republished unless gossip brings them first. */
  readonly #toRepublish = new Map<string, { wire: Uint8Array, at: number }>()
  #nextAntiEntropy = 0
  #wakeAt = Infinity

  constructor (init: CapabilityTableInit) {
    this.#signer = init.signer
    this.#verifier = init.verifier
    this.#random = init.random
    this.#ttlMs = init.ttlMs ?? 60_000
    this.#refreshMs = Math.max(1, Math.floor(this.#ttlMs * (init.refreshFraction ?? 1 / 3)))
    this.#maxSkewMs = init.maxSkewMs ?? 30_000
    this.#aeIntervalMs = init.antiEntropyIntervalMs ?? 15_000
    this.#maxEntries = init.maxEntries ?? 100_000
    this.#maxAgentsPerHost = init.maxAgentsPerHost ?? DEFAULT_MAX_AGENTS_PER_HOST
    this.#tickFloorMs = init.tickFloorMs ?? 200
    this.#minIdWorkBits = init.minIdWorkBits ?? 0
    this.#admission = init.admission === false ? undefined : new NewHostAdmission(init.admission)
    this.#republish = init.admission === false ? undefined : new NewHostAdmission(init.admission)
    for (const [name, version] of Object.entries(init.versions ?? {})) this.#versions.set(name, version)
    this.#republishDelayMs = init.republishDelayMs ?? 0
  }

  // ---- queries -------------------------------------------------------------------------------

  get size (): number { return this.#entries.size }
  get (agent: string): SignedVcv | undefined { return this.#entries.get(agent) }
  agents (): SignedVcv[] { return [...this.#entries.values()] }
  /** Last version used per local agent: persist it so a restart never reuses a version. */
  versions (): Record<string, number> { return Object.fromEntries(this.#versions) }
  /** Every live signed record (VCVs and tombstones) as sent: save them to restore the table later. */
  records (now: number): Uint8Array[] { return this.#live(now).map(r => r.wire) }
  /** Hosts caught signing two different VCVs with one version. */
  flaggedHosts (): string[] { return [...this.#evidence.keys()] }
  evidence (host: string): Array<[SignedVcv, SignedVcv]> { return this.#evidence.get(host) ?? [] }

  // ---- local requests ------------------------------------------------------------------------

  /** Signs and gossips a new version of a local agent (first advertisement or a change). */
  advertise (agent: LocalAgent, now: number): Array<Effect<TableEvent>> {
    this.check(agent)
    this.#local.set(agent.name, agent)
    return this.#issue(agent, now)
  }

  /**
   * Throws a ValidationError if this agent could not be advertised (name, lengths, limits), without
   * changing anything: a reload checks every agent before it touches any.
   */
  check (agent: LocalAgent): void {
    if (!NAME_PATTERN.test(agent.name)) throw new ValidationError(`agent name must match ${NAME_PATTERN}`)
    validateVcvBody(this.#body(agent, 1, 0))
  }

  /** Withdraws a local agent with a signed tombstone. */
  withdraw (name: string, now: number): Array<Effect<TableEvent>> {
    this.#local.delete(name)
    const agent = `${this.#signer.peerId}/${name}`
    const version = this.#bump(name)
    const tomb = signTombstone({ v: WIRE_VERSION, agent, version, issuedAt: now, expiresAt: now + this.#ttlMs }, this.#signer)
    const effects = this.#applyTombstone(tomb, 'gossip', now)
    return [...effects, { type: 'broadcast', data: tomb.wire }]
  }

  // ---- network events ------------------------------------------------------------------------

  /**
   * A gossip message: one record or a bundle (bundle.ts). The verdict tells gossipsub whether to
   * forward it: reject at the first invalid record (the rest are not checked: the sender pays for
   * one invalid message, as it would have for that record alone), else accept if any record was
   * new, else ignore. Records before an invalid one keep their effect: each is signed on its own.
   */
  receiveGossip (data: Uint8Array, from: string | undefined, now: number): Outcome {
    let items: Uint8Array[]
    try {
      items = gossipRecords(data)
    } catch (err) {
      return rejected(from, (err as Error).message)
    }
    if (items.length === 1) return this.#receive(items[0]!, from, now, 'gossip')
    const effects: Array<Effect<TableEvent>> = []
    let accepted = false
    let ignoredFor: string | undefined
    let flood: Outcome['flood']
    for (const item of items) {
      const outcome = this.#receive(item, from, now, 'gossip')
      effects.push(...outcome.effects)
      flood ??= outcome.flood
      if (outcome.verdict === 'reject') return { verdict: 'reject', ...(outcome.reason !== undefined ? { reason: outcome.reason } : {}), ...(flood !== undefined ? { flood } : {}), effects }
      if (outcome.verdict === 'accept') accepted = true
      else ignoredFor ??= outcome.reason
    }
    return { verdict: accepted ? 'accept' : 'ignore', ...(!accepted && ignoredFor !== undefined ? { reason: ignoredFor } : {}), ...(flood !== undefined ? { flood } : {}), effects }
  }

  /** A digest or batch from a directly connected peer. */
  receiveDirect (from: string, data: Uint8Array, now: number): Outcome {
    let message
    try {
      message = decodeDirect(data)
    } catch (err) {
      return rejected(from, (err as Error).message)
    }
    if (message.t === 'digest') return { verdict: 'accept', effects: this.#answerDigest(from, message.entries, now) }
    const effects: Array<Effect<TableEvent>> = []
    let accepted = 0
    let firstReject: string | undefined
    for (const item of message.items) {
      const outcome = this.#receive(item, from, now, 'direct')
      effects.push(...outcome.effects)
      if (outcome.verdict === 'accept') accepted++
      if (outcome.verdict === 'reject') firstReject ??= outcome.reason
    }
    if (firstReject !== undefined) return { verdict: 'reject', reason: firstReject, effects }
    return { verdict: accepted > 0 ? 'accept' : 'ignore', effects }
  }

  /**
   * Reloads saved records after a restart. Each is verified again like any record from the network
   * (a saved file earns no trust); expired ones are dropped; this host's own are skipped, since it
   * advertises its agents afresh. Nothing is re-broadcast.
   */
  restore (records: Uint8Array[], now: number): Array<Effect<TableEvent>> {
    const effects: Array<Effect<TableEvent>> = []
    for (const wire of records) {
      let host: string | undefined
      try {
        host = splitAgentId(decodeRecord(wire).body.agent)?.host
      } catch {
        // Unreadable: #receive below reports it as rejected.
      }
      if (host === this.#signer.peerId) continue
      effects.push(...this.#receive(wire, undefined, now, 'gossip').effects)
    }
    return effects
  }

  /** A new connection: offer our digest so each side can push what the other lacks. */
  peerConnected (peer: string, now: number): Array<Effect<TableEvent>> {
    this.#peers.add(peer)
    if (this.#nextAntiEntropy <= now) this.#nextAntiEntropy = now + this.#aeIntervalMs
    return [{ type: 'send', to: peer, data: this.#digest(now) }, ...this.#timer(now, this.#nextAntiEntropy)]
  }

  peerDisconnected (peer: string): void {
    this.#peers.delete(peer)
  }

  /** Timer: expire entries, refresh local VCVs, run periodic anti-entropy. */
  tick (now: number): Array<Effect<TableEvent>> {
    const effects: Array<Effect<TableEvent>> = []
    for (const [agent, vcv] of this.#entries) {
      if (vcv.body.expiresAt <= now) {
        this.#forget(vcv)
        this.#entries.delete(agent)
        this.#track(agent, true)
        effects.push(event({ type: 'removed', agent, reason: 'expired' }))
      }
    }
    for (const [agent, tomb] of this.#tombstones) {
      if (tomb.body.expiresAt <= now) {
        this.#forget(tomb)
        this.#tombstones.delete(agent)
        this.#track(agent, true)
      }
    }
    for (const agent of this.#local.values()) {
      const current = this.#entries.get(this.#agentId(agent.name))
      if (current === undefined || now >= current.body.issuedAt + this.#refreshMs) effects.push(...this.#issue(agent, now))
    }
    for (const [key, { wire, at }] of this.#toRepublish) {
      if (at > now) continue
      this.#toRepublish.delete(key)
      if (this.#stored.has(key)) effects.push({ type: 'broadcast', data: wire })
    }
    if (now >= this.#nextAntiEntropy) {
      this.#nextAntiEntropy = now + this.#aeIntervalMs
      const peers = [...this.#peers]
      const peer = peers[Math.floor(this.#random() * peers.length)]
      if (peer !== undefined) effects.push({ type: 'send', to: peer, data: this.#digest(now) })
    }
    this.#wakeAt = Infinity
    return [...effects, ...this.#timer(now, this.#earliestDeadline())]
  }

  // ---- internals -----------------------------------------------------------------------------

  #agentId (name: string): string { return `${this.#signer.peerId}/${name}` }

  #bump (name: string): number {
    const version = (this.#versions.get(name) ?? 0) + 1
    this.#versions.set(name, version)
    return version
  }

  #issue (agent: LocalAgent, now: number): Array<Effect<TableEvent>> {
    const vcv = signVcv(this.#body(agent, this.#bump(agent.name), now), this.#signer)
    const effects = this.#store(vcv, 'gossip', now)
    return [...effects, event({ type: 'advertised', vcv }), { type: 'broadcast', data: vcv.wire }]
  }

  #body (agent: LocalAgent, version: number, now: number): VcvBody {
    const inputSchema = canonicalJson(agent.inputSchema)
    const outputSchema = canonicalJson(agent.outputSchema)
    return {
      v: WIRE_VERSION,
      agent: this.#agentId(agent.name),
      version,
      description: agent.description,
      skills: agent.skills,
      inputSchema,
      outputSchema,
      schemaHash: schemaHash(inputSchema, outputSchema),
      embedding: agent.embedding === undefined ? null : { model: agent.embedding.model, vector: float32Bytes(agent.embedding.vector) },
      cost: agent.costPerCall,
      latencyMs: agent.latencyMs,
      capacity: agent.capacity,
      policy: agent.policy,
      issuedAt: now,
      expiresAt: now + this.#ttlMs
    }
  }

  #receive (data: Uint8Array, from: string | undefined, now: number, via: Via): Outcome {
    const key = wireKey(data)
    // Someone gossips a record this peer was going to republish: forward that message instead
    // (accept), which reaches the same neighbours, and drop the republish. Ignoring it as a
    // duplicate would stop it here, and the peers behind this one would get it from neither.
    if (via === 'gossip' && this.#toRepublish.delete(key)) return { verdict: 'accept', reason: 'forwarded instead of republished', effects: [] }
    if (this.#stored.has(key)) return ignored('duplicate')
    let record: SignedRecord
    try {
      record = decodeRecord(data)
    } catch (err) {
      return rejected(from, (err as Error).message)
    }
    const { agent, version, issuedAt, expiresAt } = record.body
    // Harmless reasons to drop come first: they cost no signature check and penalise nobody.
    if (issuedAt > now + this.#maxSkewMs) return ignored('issued in the future (clock skew?)')
    if (expiresAt <= now) return ignored('expired')
    const tomb = this.#tombstones.get(agent)
    if (tomb !== undefined && version <= tomb.body.version) {
      return ignored(record.kind === 'tomb' && bytesEqual(record.bodyBytes, tomb.bodyBytes) ? 'duplicate' : 'withdrawn')
    }
    const current = this.#entries.get(agent)
    if (current !== undefined && version < current.body.version) return ignored('stale version')
    // Ignored, not rejected: peers may hold a host's agents in a different order, so an honest
    // forwarder can pass on a record that is over the quota here.
    if (tomb === undefined && current === undefined && this.#overQuota(agent)) {
      // From the host itself it is a flood: an honest host never advertises past the network's quota.
      return { ...ignored(`${OVER_QUOTA} of ${this.#maxAgentsPerHost} agents`), ...(from === splitAgentId(agent)?.host ? { flood: 'quota' as const } : {}) }
    }
    if (current !== undefined && record.kind === 'vcv' && version === current.body.version &&
      bytesEqual(record.bodyBytes, current.bodyBytes)) return ignored('duplicate')
    // Rejected: no honest peer holds, so none forwards, a record of a host without the work.
    if (this.#minIdWorkBits > 0 && idWorkBits(splitAgentId(agent)?.host ?? '') < this.#minIdWorkBits) {
      return rejected(from, `host id has less than the network's ${this.#minIdWorkBits} bits of work`)
    }
    // A new host past the neighbour's budget is dropped before the signature check (the costly
    // part of a flood); only a valid record spends the budget.
    const newHost = from !== undefined && this.#admission !== undefined && tomb === undefined && current === undefined &&
      !this.#knownHost(agent)
    if (newHost && !this.#admission!.has(from, via, now)) return { ...ignored(OVER_ADMISSION), flood: 'admission' }
    if (!verifyRecord(record, this.#verifier)) return rejected(from, 'bad signature')
    if (newHost) this.#admission!.take(from, via, now)

    if (current !== undefined && record.kind === 'vcv' && version === current.body.version) {
      return { verdict: 'ignore', reason: 'equivocation', effects: this.#equivocation(current, record) }
    }
    if (splitAgentId(agent)?.host === this.#signer.peerId) return this.#ownRecordSeen(record, now)
    if (record.kind === 'tomb') return { verdict: 'accept', effects: this.#applyTombstone(record, via, now) }
    if (current === undefined && this.#entries.size >= this.#maxEntries) return ignored('table full')
    return { verdict: 'accept', effects: this.#store(record, via, now) }
  }

  #store (vcv: SignedVcv, via: Via, now: number): Array<Effect<TableEvent>> {
    const agent = vcv.body.agent
    const knownHost = this.#knownHost(agent)
    const previous = this.#entries.get(agent)
    const withdrawn = this.#tombstones.get(agent)
    invariant(previous === undefined || vcv.body.version > previous.body.version, () => `capability table: ${agent} would go from version ${previous!.body.version} to ${vcv.body.version}`)
    invariant(withdrawn === undefined || vcv.body.version > withdrawn.body.version, () => `capability table: ${agent} would come back at version ${vcv.body.version} after its tombstone at ${withdrawn!.body.version}`)
    this.#forget(previous)
    this.#stored.add(wireKey(vcv.wire))
    const held = this.#held(agent)
    this.#entries.set(agent, vcv)
    // A newer version supersedes a tombstone: an agent is either live or withdrawn, never both.
    this.#forget(this.#tombstones.get(agent))
    this.#tombstones.delete(agent)
    this.#track(agent, held)
    const effects: Array<Effect<TableEvent>> = [event(previous === undefined
      ? { type: 'added', vcv }
      : { type: 'updated', vcv, previous })]
    // Learned off-gossip: republish so peers beyond this link hear it too. Content-addressed
    // message ids make this idempotent in the mesh.
    if (via === 'direct' && this.#mayRepublish(knownHost, now)) effects.push(...this.#republishLater(vcv.wire, now))
    return [...effects, ...this.#timer(now, this.#deadline(vcv))]
  }

  #applyTombstone (tomb: SignedTombstone, via: Via, now: number): Array<Effect<TableEvent>> {
    const agent = tomb.body.agent
    const knownHost = this.#knownHost(agent)
    const live = this.#entries.get(agent)
    invariant(live === undefined || tomb.body.version >= live.body.version, () => `capability table: ${agent} withdrawn at version ${tomb.body.version} below its live ${live!.body.version}`)
    this.#forget(this.#tombstones.get(agent))
    this.#stored.add(wireKey(tomb.wire))
    const held = this.#held(agent)
    this.#tombstones.set(agent, tomb)
    const effects: Array<Effect<TableEvent>> = []
    const removed = this.#entries.get(agent)
    if (removed !== undefined) {
      this.#forget(removed)
      this.#entries.delete(agent)
      effects.push(event({ type: 'removed', agent, reason: 'withdrawn' }))
    }
    this.#track(agent, held)
    if (via === 'direct' && this.#mayRepublish(knownHost, now)) effects.push(...this.#republishLater(tomb.wire, now))
    return [...effects, ...this.#timer(now, tomb.body.expiresAt)]
  }

  /**
   * A record signed by this host that is newer than what we hold: it survives from an earlier run
   * whose version counter was lost. Jump past it so our next advertisement wins.
   */
  #ownRecordSeen (record: SignedRecord, now: number): Outcome {
    const name = splitAgentId(record.body.agent)?.name ?? ''
    if ((this.#versions.get(name) ?? 0) < record.body.version) this.#versions.set(name, record.body.version)
    const local = this.#local.get(name)
    if (local !== undefined) return { verdict: 'ignore', reason: 'own agent, superseded', effects: this.#issue(local, now) }
    if (record.kind === 'tomb') return ignored('own agent, already withdrawn')
    return { verdict: 'ignore', reason: 'own agent, no longer hosted', effects: this.withdraw(name, now) }
  }

  #knownHost (agent: string): boolean { return this.#perHost.has(splitAgentId(agent)?.host ?? '') }

  /**
   * Whether to republish a record learned off-gossip. A host new to this table goes out only
   * within the gossip budget our neighbours grant us: past it they would ignore it and count it
   * against us as a flood (a healed partition can bring thousands at once); their own
   * anti-entropy brings the rest. Records of hosts already held always go out.
   */
  #mayRepublish (knownHost: boolean, now: number): boolean {
    return knownHost || this.#republish === undefined || this.#republish.take('', 'gossip', now)
  }

  /** Republishes a record learned off-gossip: at once, or after the delay unless gossip brings it first. */
  #republishLater (wire: Uint8Array, now: number): Array<Effect<TableEvent>> {
    if (this.#republishDelayMs <= 0) return [{ type: 'broadcast', data: wire }]
    const at = now + Math.round(this.#republishDelayMs * (0.5 + this.#random()))
    this.#toRepublish.set(wireKey(wire), { wire, at })
    return this.#timer(now, at)
  }

  #held (agent: string): boolean { return this.#entries.has(agent) || this.#tombstones.has(agent) }

  /** Keeps the per-host count right after `agent` was added to or removed from the table. */
  #track (agent: string, wasHeld: boolean): void {
    const held = this.#held(agent)
    if (held === wasHeld) return
    const host = splitAgentId(agent)?.host ?? ''
    const n = (this.#perHost.get(host) ?? 0) + (held ? 1 : -1)
    if (n > 0) this.#perHost.set(host, n)
    else this.#perHost.delete(host)
  }

  /** A new agent id of a host that already has its quota here (this host's own are never counted against it). */
  #overQuota (agent: string): boolean {
    const host = splitAgentId(agent)?.host
    if (host === undefined || host === this.#signer.peerId) return false
    return (this.#perHost.get(host) ?? 0) >= this.#maxAgentsPerHost
  }

  #equivocation (kept: SignedVcv, other: SignedVcv): Array<Effect<TableEvent>> {
    const host = splitAgentId(kept.body.agent)?.host ?? ''
    const list = this.#evidence.get(host) ?? []
    if (list.length < MAX_EVIDENCE_PER_HOST) list.push([kept, other])
    this.#evidence.set(host, list)
    return [event({ type: 'equivocation', host, evidence: [kept, other] })]
  }

  #digest (now: number): Uint8Array {
    const entries: DigestEntry[] = []
    for (const record of this.#live(now)) entries.push([digestKey(record.body.agent), record.body.version])
    return encodeDirect({ t: 'digest', entries })
  }

  #live (now: number): SignedRecord[] {
    const out: SignedRecord[] = []
    for (const r of this.#entries.values()) if (r.body.expiresAt > now) out.push(r)
    for (const r of this.#tombstones.values()) if (r.body.expiresAt > now) out.push(r)
    return out
  }

  /** Pushes every live record the peer's digest shows it lacks or holds an older version of. */
  #answerDigest (peer: string, theirs: DigestEntry[], now: number): Array<Effect<TableEvent>> {
    const known = new Map<string, number>()
    for (const [key, version] of theirs) known.set(bytesToHex(key), version)
    const effects: Array<Effect<TableEvent>> = []
    let items: Uint8Array[] = []
    let bytes = 0
    for (const record of this.#live(now)) {
      const have = known.get(bytesToHex(digestKey(record.body.agent)))
      if (have !== undefined && have >= record.body.version) continue
      if (items.length >= directLimits.maxBatchItems || bytes + record.wire.byteLength > directLimits.targetBatchBytes) {
        effects.push({ type: 'send', to: peer, data: encodeDirect({ t: 'batch', items }) })
        items = []
        bytes = 0
      }
      items.push(record.wire)
      bytes += record.wire.byteLength
    }
    if (items.length > 0) effects.push({ type: 'send', to: peer, data: encodeDirect({ t: 'batch', items }) })
    return effects
  }

  #forget (record: SignedRecord | undefined): void {
    if (record !== undefined) this.#stored.delete(wireKey(record.wire))
  }

  /** The moment `record` next needs attention: refresh for our own agents, expiry for the rest. */
  #deadline (record: SignedRecord): number {
    const id = splitAgentId(record.body.agent)
    const local = record.kind === 'vcv' && id?.host === this.#signer.peerId && this.#local.has(id.name)
    return local ? record.body.issuedAt + this.#refreshMs : record.body.expiresAt
  }

  /**
   * Emits a timer effect when `candidate` comes before the armed timer. Only `tick` rescans the
   * whole table, so accepting n records costs O(n), not O(n^2).
   */
  #timer (now: number, candidate: number): Array<Effect<TableEvent>> {
    if (candidate === Infinity) return []
    const at = Math.max(candidate, now + this.#tickFloorMs)
    if (at >= this.#wakeAt) return []
    this.#wakeAt = at
    return [{ type: 'timer', at }]
  }

  #earliestDeadline (): number {
    let at = this.#peers.size > 0 ? this.#nextAntiEntropy : Infinity
    for (const vcv of this.#entries.values()) at = Math.min(at, this.#deadline(vcv))
    for (const tomb of this.#tombstones.values()) at = Math.min(at, tomb.body.expiresAt)
    for (const pending of this.#toRepublish.values()) at = Math.min(at, pending.at)
    return at
  }
}

function event (e: TableEvent): Effect<TableEvent> {
  return { type: 'event', event: e }
}

function ignored (reason: string): Outcome {
  return { verdict: 'ignore', reason, effects: [] }
}

function rejected (from: string | undefined, reason: string): Outcome {
  return { verdict: 'reject', reason, effects: [event({ type: 'rejected', from, reason })] }
}

/** SHA-256 of a record's wire bytes (once per array in the simulator; see `cachePerArray`). */
const wireKey = oncePerArray(wire => toString(sha256(wire), 'base64'))

/** 8 bytes of SHA-256 of the agent id: enough to tell agents apart in a digest (a collision only delays one push). */
function digestKey (agent: string): Uint8Array {
  return sha256(agent).subarray(0, 8)
}

function bytesToHex (bytes: Uint8Array): string {
  return toString(bytes, 'base16')
}

function float32Bytes (vector: Float32Array): Uint8Array {
  const out = new Uint8Array(vector.length * 4)
  const view = new DataView(out.buffer)
  for (let i = 0; i < vector.length; i++) view.setFloat32(i * 4, vector[i] ?? 0, true)
  return out
}
