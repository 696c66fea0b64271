/**
 * A peer's side of consensus, as one pure state machine over all its instances: it starts an
 * instance when a requester's statement names it, routes committee messages to instances by id
 * (holding a few that arrive before their statement), gossips each certificate it commits,
 * verifies the certificates it hears, keeps them, and feeds them to its reputation book. Peers
 * that (re)connect exchange a summary of the certificates they hold; one that lacks some pages
 * through the other's ids and fetches all it is missing (catch-up.ts), so a peer that was down
 * accepts every certificate it missed. A member gives up an instance whose requester has gone
 * silent (`memberGiveUpMs`).
 *
 * Transport messages (canonical CBOR): `start` (statement + the answers the requester holds),
 * `msg` (one instance message), `want` (a statement missed), catch-up's `inv`, `list`, `ids`,
 * `get` and `certs`, and `have` (recent ids; sent by older peers, still answered).
 * Gossip carries encoded certificates. The node drives this over libp2p; the simulator drives the
 * same machine in virtual time.
 */
import { bytesEqual, cachingPerArray, decodeCanonical, encodeCanonical, oncePerArray } from '../cbor.ts'
import type { Effect } from '../effects.ts'
import type { Signer, Verifier } from '../identity.ts'
import { InvariantError } from '../assert.ts'
import { ConsensusInstance, type InstanceEvent, type InstanceInit, type Timeouts } from './bft.ts'
import { CatchUp, CERTS_REPLY_BYTES, GET_IDS, PAGE_IDS } from './catch-up.ts'
import { decodeCertificate, encodeCertificate, verifyCertificate, type Certificate, type CertificateCheck, type CertificateSummary } from './certificate.ts'
import { CertificateStore } from './certificate-store.ts'
import { decodeCommittee, instanceId, verifyCommittee } from './committee.ts'
import { checkEquivocation, encodeEquivocation } from './evidence.ts'
import { ReputationBook } from './reputation.ts'
import { ConsensusError, consensusLimits, HEX64, wireHash } from './signed.ts'
import type { Embed } from './validity.ts'

/** What gossip should do with a message: forward it, drop it quietly, or drop it and blame the sender. */
export type GossipVerdict = 'accept' | 'ignore' | 'reject'

export type ConsensusPeerEvent =
  | { type: 'committed', instance: string, certificate: Certificate, summary: CertificateSummary }
  /** A certificate from elsewhere (gossip, sync, a committee) that verified, for an instance new here. */
  | { type: 'accepted', id: string, summary: CertificateSummary }
  | { type: 'equivocation', instance: string, sender: string, first: Uint8Array, second: Uint8Array }
  /** A proven equivocation, new here: the host's agents lose their reputation on every peer. */
  | { type: 'equivocator', host: string, id: string }
  | { type: 'rejected', from: string, reason: string }
  /** A member gave up an unfinished instance (its requester went silent); it never votes there again. */
  | { type: 'abandoned', instance: string, reason: string }

export interface ConsensusPeerInit {
  signer: Signer
  verifier: Verifier
  timeouts?: Partial<Timeouts>
  embed?: Embed
  book?: ReputationBook
  /** Certificates kept (and offered to reconnecting peers), newest last (default 10 000). */
  maxCertificates?: number
  /** Unfinished instances at once (default 1000), and per requester (default 64); past that new ones are refused. */
  maxInstances?: number
  maxPerRequester?: number
  /**
   * Instances this peer took part in before (restored after a restart): it never votes in one
   * again, since it no longer knows what it signed there. `onJoin` must record each new one
   * durably before the effects of `start` are carried out.
   */
  joined?: Iterable<string>
  onJoin?: (instance: string) => void
  /**
   * Set when the record of `joined` was found damaged: until this time the peer joins no other
   * peer's instance, since it may be one it signed in and forgot. By then (start + memberGiveUpMs)
   * every instance it could have forgotten is finished or given up by its members.
   */
  joinedUnknownUntil?: number
  /**
   * How long a member keeps an unfinished instance in which the requester has sent nothing
   * (default 10 minutes; see MEMBER_GIVE_UP_MS).
   */
  memberGiveUpMs?: number
  /** Each certificate newly kept (committed here or accepted from elsewhere; not restored ones), to store it. */
  onCertificate?: (bytes: Uint8Array) => void
  /** Test only: a deliberate bug in every instance (`InstanceInit.testBug`). */
  testBug?: InstanceInit['testBug']
}

type Out = Array<Effect<ConsensusPeerEvent>>

/** Certificate ids in an older peer's `have`, and certificates in our answer to it. */
const HAVE_LIMIT = 512
const HAVE_REPLY = 64
/**
 * A member abandons an unfinished instance after this long without a message from its requester.
 * A live requester cannot be that quiet: it is a member too, and re-sends its messages of the
 * current round at least every 8 × resendMs (8 s by default, bft.ts) for as long as it keeps the
 * instance; and it keeps it only for its own wait (the agreement's timeoutMs, 20 s by default),
 * after which it abandons the instance without telling anyone. Ten minutes is 75 resend intervals
 * and 30 such waits: silence that long means the requester is gone or gave up, and the instance
 * can no longer be of use to it. Safety does not depend on the value: an abandoned instance stays
 * among those joined, so this member never votes in it again.
 */
export const MEMBER_GIVE_UP_MS = 10 * 60_000
/** Messages held per unknown instance, unknown instances held, and bytes held in all, until a statement arrives. */
const EARLY_PER_INSTANCE = 64
const EARLY_INSTANCES = 64
const EARLY_BYTES = 8 * 1024 * 1024
/** Peers whose last inv digest is remembered (more than a peer's connections; past it, forgotten). */
const TOLD_PEERS = 4096
/** Finished instances remembered (so a statement cannot restart one), oldest forgotten first. */
const RETIRED = 100_000

interface Slot {
  instance: ConsensusInstance
  timer: number
  finished: boolean
  /** When the requester last sent something for it (a member's give-up clock). */
  heard: number
}

/**
 * A transport message decoded once per array: in the simulator one array goes to every member,
 * and sharing the decoded envelope lets the instance messages inside it (the same arrays then) be
 * decoded once too. Read-only.
 */
const envelope = oncePerArray(data => decodeCanonical(data) as Record<string, unknown> | null)

/** A gossiped certificate decoded once per array, with the hash of its statement (its instance). */
const decodedCertificate = oncePerArray(bytes => {
  const certificate = decodeCertificate(bytes)
  return { certificate, statementHash: wireHash(certificate.statement) }
})

/** Certificate checks by gossiped array (see ConsensusPeer's #verified). */
const checkedCertificates = new WeakMap<Uint8Array, { check: CertificateCheck, verifier: Verifier, embed: Embed | undefined }>()

export class ConsensusPeer {
  readonly book: ReputationBook
  readonly #signer: Signer
  readonly #verifier: Verifier
  readonly #timeouts: Partial<Timeouts> | undefined
  readonly #embed: Embed | undefined
  readonly #maxCertificates: number
  readonly #maxInstances: number
  readonly #maxPerRequester: number
  readonly #onJoin: ((instance: string) => void) | undefined
  readonly #onCertificate: ((bytes: Uint8Array) => void) | undefined
  readonly #testBug: InstanceInit['testBug']
  readonly #giveUpMs: number
  readonly #joinedUnknownUntil: number
  readonly #instances = new Map<string, Slot>()
  /** Instance ids this peer has taken part in (restored ones included): never started twice. */
  readonly #joined: Set<string>
  readonly #early = new Map<string, Array<{ from: string, data: Uint8Array }>>()
  #earlyBytes = 0
  readonly #wanted = new Set<string>()
  /** The digest last sent to each connected peer in an inv. */
  readonly #told = new Map<string, string>()
  /**
   * Instance id → its encoded certificate, in arrival order. Members decide holding different
   * sets of precommits, so one instance has several valid certificates: the first one kept
   * stands for it, and reputation counts each instance once, whatever certificate carried it.
   */
  readonly #certificates: CertificateStore
  readonly #catchUp: CatchUp

  constructor (init: ConsensusPeerInit) {
    this.#signer = init.signer
    this.#verifier = init.verifier
    this.#timeouts = init.timeouts
    this.#embed = init.embed
    this.book = init.book ?? new ReputationBook()
    this.#maxCertificates = init.maxCertificates ?? 10_000
    this.#maxInstances = init.maxInstances ?? 1000
    this.#maxPerRequester = init.maxPerRequester ?? 64
    this.#joined = new Set(init.joined ?? [])
    this.#onJoin = init.onJoin
    this.#onCertificate = init.onCertificate
    this.#testBug = init.testBug
    this.#giveUpMs = init.memberGiveUpMs ?? MEMBER_GIVE_UP_MS
    this.#joinedUnknownUntil = init.joinedUnknownUntil ?? -Infinity
    this.#certificates = new CertificateStore(this.#maxCertificates)
    this.#catchUp = new CatchUp({ known: id => this.#certificates.has(id) || this.#certificates.forgot(id), maxFetch: this.#maxCertificates })
  }

  get peerId (): string { return this.#signer.peerId }
  /** Instance ids of the certificates held, oldest first. */
  certificateIds (): string[] { return this.#certificates.ids() }
  /** The certificate kept for an instance. */
  certificate (instance: string): Uint8Array | undefined { return this.#certificates.get(instance) }
  instance (id: string): ConsensusInstance | undefined { return this.#instances.get(id)?.instance }

  /**
   * Starts an instance from a signed statement (the requester calls this with the statement it
   * signed; a member, with one it received) and the answers already held. Returns the instance id
   * with the effects; a statement that does not verify or does not name this peer is refused.
   */
  start (statementWire: Uint8Array, answers: readonly Uint8Array[], now: number): { instance: string, effects: Out } {
    const out: Out = []
    const statement = decodeCommittee(statementWire)
    if (!verifyCommittee(statement, this.#verifier)) throw new ConsensusError('the committee statement has a bad signature')
    const id = instanceId(statement)
    let slot = this.#instances.get(id)
    if (slot === undefined) {
      if (this.#joined.has(id)) throw new ConsensusError(`this peer already took part in instance ${id.slice(0, 12)}… (before a restart, or it is finished): it will not vote in it again`)
      if (now < this.#joinedUnknownUntil && statement.body.requester !== this.#signer.peerId) {
        throw new ConsensusError(`this peer's record of the instances it signed in was damaged: it joins no other peer's instance for ${Math.ceil((this.#joinedUnknownUntil - now) / 1000)} s more, so it cannot sign twice in one it forgot`)
      }
      this.#makeRoom(statement.body.requester)
      this.#joined.add(id)
      if (this.#joined.size > RETIRED) this.#joined.delete(this.#joined.values().next().value!)
      this.#onJoin?.(id)
      const instance = new ConsensusInstance({ statement, signer: this.#signer, verifier: this.#verifier, timeouts: this.#timeouts, embed: this.#embed, ...this.#testBug !== undefined ? { testBug: this.#testBug } : {} })
      slot = { instance, timer: Infinity, finished: false, heard: now }
      this.#instances.set(id, slot)
      if (statement.body.requester === this.#signer.peerId) {
        const start = encodeCanonical({ k: 'start', statement: statementWire, answers: [...answers] })
        for (const m of statement.body.members) if (m.id !== this.#signer.peerId) out.push({ type: 'send', to: m.id, data: start })
      }
      this.#apply(id, slot, instance.start(now), out)
      for (const early of this.#early.get(id) ?? []) {
        this.#earlyBytes -= early.data.byteLength
        this.#apply(id, slot, instance.receive(early.from, early.data, now), out)
      }
      this.#early.delete(id)
    }
    // The requester's start carries these answers to every member: none is forwarded again.
    for (const answer of answers) this.#apply(id, slot, slot.instance.addAnswer(answer, now, false), out)
    return { instance: id, effects: this.#withTimer(out) }
  }

  /**
   * The requester gives up on an instance it started (its wait timed out, the subtask escalated):
   * this peer stops taking part and the instance no longer counts against the limits. Its id stays
   * among those joined, so it never votes there again. Without this, a requester whose committees
   * keep stalling would hit its own quota and could never agree on anything again.
   */
  abandon (instance: string): void {
    const slot = this.#instances.get(instance)
    if (slot === undefined || slot.finished || slot.instance.statement.requester !== this.#signer.peerId) return
    this.#instances.delete(instance)
  }

  /** A transport message from `from`. Never throws: bad input becomes a `rejected` event. */
  receive (from: string, data: Uint8Array, now: number): Out {
    const out: Out = []
    try {
      if (data.byteLength > 2 * consensusLimits.maxMessageBytes) throw new ConsensusError(`message is ${data.byteLength} bytes`)
      const m = envelope(data)
      if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new ConsensusError('message must be a map')
      switch (m.k) {
        case 'start': {
          const answers = bytesList(m.answers, consensusLimits.maxExecutors, 'start answers')
          if (!(m.statement instanceof Uint8Array)) throw new ConsensusError('start statement must be bytes')
          // From the requester, or relayed by a member (the statement is signed either way).
          const statement = decodeCommittee(m.statement)
          if (!statement.body.members.some(x => x.id === this.#signer.peerId)) throw new ConsensusError('this peer is not a member of that committee')
          const known = this.#instances.get(instanceId(statement))
          if (known !== undefined) {
            if (from === known.instance.statement.requester) known.heard = now
            // A relayed start may have come first with fewer answers: take the rest from this one.
            for (const answer of answers) this.#apply(known.instance.id, known, known.instance.addAnswer(answer, now, false), out)
            break
          }
          out.push(...this.start(m.statement, answers, now).effects)
          break
        }
        case 'want': {
          // A member heard of an instance whose start it missed: relay the statement.
          if (typeof m.i !== 'string' || !HEX64.test(m.i)) throw new ConsensusError('want needs an instance id')
          const slot = this.#instances.get(m.i)
          if (slot !== undefined && slot.instance.statement.members.some(x => x.id === from)) {
            out.push({ type: 'send', to: from, data: encodeCanonical({ k: 'start', statement: slot.instance.statementWire, answers: slot.instance.answers().map(a => a.wire) }) })
          }
          break
        }
        case 'msg': {
          if (typeof m.i !== 'string' || !HEX64.test(m.i) || !(m.m instanceof Uint8Array)) throw new ConsensusError('msg needs an instance id and bytes')
          const slot = this.#instances.get(m.i)
          if (slot !== undefined) {
            if (from === slot.instance.statement.requester) slot.heard = now
            this.#apply(m.i, slot, slot.instance.receive(from, m.m, now), out)
          } else if (!this.#joined.has(m.i)) {
            this.#hold(m.i, from, m.m)
            // Ask the sender for the statement once: the requester's start may have been lost.
            if (!this.#wanted.has(m.i)) {
              if (this.#wanted.size >= EARLY_INSTANCES) this.#wanted.clear()
              this.#wanted.add(m.i)
              out.push({ type: 'send', to: from, data: encodeCanonical({ k: 'want', i: m.i }) })
            }
          }
          break
        }
        case 'inv': {
          if (!Number.isSafeInteger(m.n) || (m.n as number) < 0 || typeof m.x !== 'string' || !HEX64.test(m.x)) throw new ConsensusError('inv needs a count and a digest')
          const theirs = { n: m.n as number, x: m.x }
          out.push(...this.#catchUp.offer(from, theirs, { n: this.#certificates.size, x: this.#certificates.digest() }, now))
          // What we told this peer is out of date (a certificate came since) and it differs from
          // what it holds: tell it again. Our first inv may predate a certificate whose gossip it
          // missed (gossipsub drops a publish to a peer whose stream is still opening).
          const told = this.#told.get(from)
          if (told !== undefined && told !== this.#certificates.digest() && theirs.x !== this.#certificates.digest()) out.push(this.#inv(from))
          break
        }
        case 'list': {
          if (!Number.isSafeInteger(m.after) || (m.after as number) < -1) throw new ConsensusError('list needs a cursor')
          const page = this.#certificates.after(m.after as number, PAGE_IDS)
          out.push({ type: 'send', to: from, data: encodeCanonical({ k: 'ids', ids: page.ids, next: page.next, more: page.more }) })
          break
        }
        case 'ids': {
          const ids = stringList(m.ids, PAGE_IDS, 'ids')
          if (!Number.isSafeInteger(m.next) || (m.next as number) < -1 || typeof m.more !== 'boolean') throw new ConsensusError('ids needs a cursor and a flag')
          out.push(...this.#catchUp.onIds(from, { ids, next: m.next as number, more: m.more }, now))
          break
        }
        case 'get':
          this.#reply(from, stringList(m.ids, GET_IDS, 'get ids'), out)
          break
        case 'have': {
          // An older peer's offer of its recent ids: push the newest of what it lacks, once.
          const ids = new Set(stringList(m.ids, HAVE_LIMIT, 'have ids'))
          const lacking = this.#certificates.ids().filter(id => !ids.has(id)).slice(-HAVE_REPLY)
          if (lacking.length > 0) this.#reply(from, lacking, out)
          break
        }
        case 'certs':
          for (const bytes of bytesList(m.certs, GET_IDS, 'certs')) this.#acceptCertificate(from, bytes, now, out)
          out.push(...this.#catchUp.onCerts(from, now))
          break
        default:
          throw new ConsensusError(`unknown consensus message ${JSON.stringify(m.k)}`)
      }
    } catch (err) {
      if (err instanceof InvariantError) throw err // our bug, not the sender's fault
      out.push({ type: 'event', event: { type: 'rejected', from, reason: (err as Error).message } })
    }
    return this.#withTimer(out)
  }

  /** A certificate or an equivocation proof heard on gossip. */
  gossip (from: string, data: Uint8Array, now: number): Out {
    return this.receiveGossip(from, data, now).effects
  }

  /**
   * The same, with the verdict a gossip validator needs: `reject` (undecodable, does not verify)
   * costs the sender its score; `ignore` (known already) is neither forwarded nor held against it.
   */
  receiveGossip (from: string, data: Uint8Array, now: number): { verdict: GossipVerdict, effects: Out } {
    const out: Out = []
    let kind: unknown
    try {
      kind = (decodeCanonical(data) as { t?: unknown } | null)?.t
    } catch (err) {
      out.push({ type: 'event', event: { type: 'rejected', from, reason: `not a consensus gossip message: ${(err as Error).message}` } })
      return { verdict: 'reject', effects: out }
    }
    const verdict = kind === 'equivocation' ? this.#acceptEquivocation(from, data, out) : this.#acceptCertificate(from, data, now, out)
    return { verdict, effects: this.#withTimer(out) }
  }

  /**
   * A peer (re)connected: tell it how many certificates this peer holds and their digest; if it
   * lacks some, it pages through our ids and fetches them (and we do the same with its `inv`).
   */
  peerConnected (peer: string): Out {
    return [this.#inv(peer)]
  }

  /** A peer went away: a catch-up from it ends (its next connection starts a new one). */
  peerDisconnected (peer: string): void {
    this.#catchUp.disconnected(peer)
    this.#told.delete(peer)
  }

  /** Our summary for `peer`, remembered so a later differing inv from it is answered only when ours changed. */
  #inv (peer: string): Effect<ConsensusPeerEvent> {
    const x = this.#certificates.digest()
    if (!this.#told.has(peer) && this.#told.size >= TOLD_PEERS) this.#told.clear()
    this.#told.set(peer, x)
    return { type: 'send', to: peer, data: encodeCanonical({ k: 'inv', n: this.#certificates.size, x }) }
  }

  /** Holders this peer is catching up from now. */
  catchingUpFrom (): string[] { return this.#catchUp.sessions() }

  tick (now: number): Out {
    const out: Out = this.#catchUp.tick(now)
    for (const [id, slot] of this.#instances) {
      if (this.#givenUp(id, slot, now, out)) continue
      if (slot.timer > now) continue
      try {
        this.#apply(id, slot, slot.instance.tick(now), out)
      } catch (err) { // an unexpected error must not take the other instances down; a broken invariant stops all
        if (err instanceof InvariantError) throw err
        slot.timer = Infinity
        out.push({ type: 'event', event: { type: 'rejected', from: this.#signer.peerId, reason: `instance ${id.slice(0, 12)}… stopped: ${(err as Error).message}` } })
      }
    }
    return this.#withTimer(out)
  }

  /** Certificates restored from disk: verified again, applied to the book, not gossiped. */
  restore (certificates: readonly Uint8Array[], now: number): Out {
    const out: Out = []
    for (const bytes of certificates) this.#acceptCertificate(this.#signer.peerId, bytes, now, out, false)
    return out
  }

  /** Answers a `get` (or an old `have`): the certificates asked for that are held, in order, within CERTS_REPLY_BYTES. */
  #reply (to: string, ids: readonly string[], out: Out): void {
    const certs: Uint8Array[] = []
    let bytes = 0
    for (const id of ids) {
      const cert = this.#certificates.get(id)
      if (cert === undefined || cert.byteLength > CERTS_REPLY_BYTES) continue // one that never fits is skipped, not waited on
      if (bytes + cert.byteLength > CERTS_REPLY_BYTES) break
      certs.push(cert)
      bytes += cert.byteLength
    }
    // Sent even when empty: the asker learns these are not here and stops asking.
    out.push({ type: 'send', to, data: encodeCanonical({ k: 'certs', certs }) })
  }

  /**
   * A member's instance whose requester has been silent for `memberGiveUpMs`: freed, reported, and
   * kept among those joined, so a late statement or message cannot start it again.
   */
  #givenUp (id: string, slot: Slot, now: number, out: Out): boolean {
    if (slot.finished || slot.instance.statement.requester === this.#signer.peerId || now - slot.heard < this.#giveUpMs) return false
    this.#instances.delete(id)
    out.push({ type: 'event', event: { type: 'abandoned', instance: id, reason: `its requester ${slot.instance.statement.requester} sent nothing for ${Math.round((now - slot.heard) / 1000)} s (limit ${Math.round(this.#giveUpMs / 1000)} s)` } })
    return true
  }

  // ---- internals ---------------------------------------------------------------------------------

  #apply (id: string, slot: Slot, effects: Array<Effect<InstanceEvent>>, out: Out): void {
    for (const e of effects) {
      if (e.type === 'timer') slot.timer = e.at
      else if (e.type === 'send') out.push({ type: 'send', to: e.to, data: encodeCanonical({ k: 'msg', i: id, m: e.data }) })
      else if (e.type === 'broadcast') out.push(e)
      else if (e.event.type === 'committed') {
        slot.finished = true
        slot.timer = Infinity
        const bytes = encodeCertificate(e.event.certificate)
        const check = verifyCertificate(e.event.certificate, this.#verifier, this.#embed)
        if (!check.ok) { // cannot happen for a value this peer checked; say so loudly if it does
          out.push({ type: 'event', event: { type: 'rejected', from: this.#signer.peerId, reason: `own certificate: ${check.problems.join('; ')}` } })
          continue
        }
        // Gossip it unless it came from elsewhere (then whoever made it gossiped it).
        if (this.#keep(bytes, check.summary)) out.push({ type: 'broadcast', data: bytes })
        out.push({ type: 'event', event: { type: 'committed', instance: id, certificate: e.event.certificate, summary: check.summary } })
      } else if (e.event.type === 'equivocation') {
        out.push({ type: 'event', event: { type: 'equivocation', instance: id, sender: e.event.sender, first: e.event.first, second: e.event.second } })
        // Two votes or proposals by one member are proof, gossiped so every peer counts it; two
        // answers by one agent are not (see evidence.ts).
        if (!e.event.sender.includes('/')) this.#acceptEquivocation(this.#signer.peerId, encodeEquivocation(e.event.first, e.event.second), out)
      } else {
        out.push({ type: 'event', event: e.event })
      }
    }
  }

  #acceptCertificate (from: string, bytes: Uint8Array, now: number, out: Out, announce = true): GossipVerdict {
    try {
      const { certificate, statementHash } = decodedCertificate(bytes)
      if (this.#certificates.has(statementHash)) return 'ignore'
      const check = this.#verified(bytes, certificate)
      if (!check.ok) throw new ConsensusError(`certificate: ${check.problems.join('; ')}`)
      this.#keep(bytes, check.summary, announce)
      if (announce) out.push({ type: 'event', event: { type: 'accepted', id: check.summary.instance, summary: check.summary } })
      // A member still working on that instance can stop: the certificate decides it.
      const slot = this.#instances.get(check.summary.instance)
      if (slot !== undefined && !slot.finished) this.#apply(check.summary.instance, slot, slot.instance.receive(from, bytes, now), out)
      return 'accept'
    } catch (err) {
      if (err instanceof InvariantError) throw err
      out.push({ type: 'event', event: { type: 'rejected', from, reason: (err as Error).message } })
      return 'reject'
    }
  }

  /**
   * verifyCertificate, or (with `cachePerArray` on, as in the simulator) its result for the same
   * array checked with the same verifier and embedder (a pure function of those): one gossiped
   * array reaches every simulated requester, and each full check decodes every signed object in
   * it and checks its signatures.
   */
  #verified (bytes: Uint8Array, certificate: Certificate): CertificateCheck {
    if (!cachingPerArray()) return verifyCertificate(certificate, this.#verifier, this.#embed)
    const known = checkedCertificates.get(bytes)
    if (known !== undefined && known.verifier === this.#verifier && known.embed === this.#embed) return known.check
    const check = verifyCertificate(certificate, this.#verifier, this.#embed)
    checkedCertificates.set(bytes, { check, verifier: this.#verifier, embed: this.#embed })
    return check
  }

  /** Checks a proof; a new one cuts the offender's reputation and is gossiped on. */
  #acceptEquivocation (from: string, bytes: Uint8Array, out: Out): GossipVerdict {
    try {
      const proof = checkEquivocation(bytes, this.#verifier)
      if (!this.book.equivocation({ id: proof.id, host: proof.host })) return 'ignore'
      out.push({ type: 'broadcast', data: bytes })
      out.push({ type: 'event', event: { type: 'equivocator', host: proof.host, id: proof.id } })
      return 'accept'
    } catch (err) {
      if (err instanceof InvariantError) throw err
      out.push({ type: 'event', event: { type: 'rejected', from, reason: (err as Error).message } })
      return 'reject'
    }
  }

  /** Stores a verified certificate and applies it to the reputation book; false if its instance was known. */
  #keep (bytes: Uint8Array, summary: CertificateSummary, store = true): boolean {
    const id = summary.instance
    if (!this.#certificates.add(id, bytes)) return false
    if (store) this.#onCertificate?.(bytes)
    if (summary.outcome.kind === 'answer') this.book.certificate({ id, agreed: summary.agreed, disagreed: summary.disagreed })
    return true
  }

  #hold (instance: string, from: string, data: Uint8Array): void {
    let held = this.#early.get(instance)
    if (held === undefined) {
      if (this.#early.size >= EARLY_INSTANCES) this.#dropEarly(this.#early.keys().next().value!)
      this.#early.set(instance, held = [])
    }
    while (this.#earlyBytes + data.byteLength > EARLY_BYTES && this.#early.size > 1) this.#dropEarly(this.#early.keys().next().value!)
    if (this.#earlyBytes + data.byteLength > EARLY_BYTES) return
    if (held.length < EARLY_PER_INSTANCE && !held.some(h => h.from === from && bytesEqual(h.data, data))) {
      held.push({ from, data })
      this.#earlyBytes += data.byteLength
    }
  }

  #dropEarly (instance: string): void {
    for (const h of this.#early.get(instance) ?? []) this.#earlyBytes -= h.data.byteLength
    this.#early.delete(instance)
  }

  /**
   * Room for one more instance: finished ones go first (they stay in `#joined`, so they cannot be
   * started again). An unfinished instance is never dropped — a member that forgot what it voted
   * could vote differently — so past the limits a new statement is refused instead.
   */
  #makeRoom (requester: string): void {
    let unfinished = 0
    let mine = 0
    for (const slot of this.#instances.values()) {
      if (slot.finished) continue
      unfinished++
      if (slot.instance.statement.requester === requester) mine++
    }
    if (mine >= this.#maxPerRequester) throw new ConsensusError(`${requester} already has ${mine} unfinished instances here (limit ${this.#maxPerRequester})`)
    if (unfinished >= this.#maxInstances) throw new ConsensusError(`this peer runs ${unfinished} unfinished instances (limit ${this.#maxInstances})`)
    for (const [id, slot] of this.#instances) {
      if (this.#instances.size < this.#maxInstances) break
      if (slot.finished) this.#instances.delete(id)
    }
  }

  #withTimer (out: Out): Out {
    let at = this.#catchUp.nextDeadline()
    for (const slot of this.#instances.values()) {
      if (slot.timer < at) at = slot.timer
      if (!slot.finished && slot.instance.statement.requester !== this.#signer.peerId && slot.heard + this.#giveUpMs < at) at = slot.heard + this.#giveUpMs
    }
    if (at !== Infinity) out.push({ type: 'timer', at })
    return out
  }
}

function bytesList (value: unknown, max: number, what: string): Uint8Array[] {
  if (!Array.isArray(value) || value.length > max || !value.every(b => b instanceof Uint8Array)) throw new ConsensusError(`${what} must be a list of at most ${max} byte strings`)
  return value as Uint8Array[]
}

function stringList (value: unknown, max: number, what: string): string[] {
  if (!Array.isArray(value) || value.length > max || !value.every(s => typeof s === 'string' && HEX64.test(s))) throw new ConsensusError(`${what} must be a list of at most ${max} ids`)
  return value as string[]
}
