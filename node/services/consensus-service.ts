/**
 * Drives the pure consensus machine (protocols/consensus/peer.ts) over libp2p: committee messages
 * travel as one-way RPC notifications, certificates on their own gossip topic, timers on the
 * wall clock. Appends each new certificate to a log in the data directory (certificate-log.ts),
 * keeps the reputation book there, and tells every peer that joins the topic what it holds, so
 * either side that lacks certificates fetches all of them, page by page.
 *
 * @example
 * ```ts
 * const { certificate, summary } = await peer.consensus.run(statement, signedAnswers, 10_000)
 * summary.outcome            // { kind: 'answer', answer: … } or { kind: 'escalate' }
 * peer.consensus.book.standing(agent)
 * ```
 */
import { appendFileSync } from 'node:fs'
import { mkdir, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { serviceCapabilities, serviceDependencies, type ComponentLogger, type Logger, type Metrics, type PeerId, type Startable } from '@libp2p/interface'
import { bytesEqual, decodeCanonical } from '../../protocols/cbor.ts'
import type { Effect } from '../../protocols/effects.ts'
import {
  committeeBody, ConsensusPeer, MEMBER_GIVE_UP_MS, ReputationBook, signCommittee, verifyCertificate, type Standings,
  type CommitteeRequest, type Embed, type Certificate, type CertificateSummary, type ConsensusPeerEvent, type SignedCommittee, type Timeouts
} from '../../protocols/consensus/index.ts'
import type { Signer, Verifier } from '../../protocols/identity.ts'
import { TopicValidatorResult, VALIDATOR_RESULT, type GossipSub, type SubscriptionChangeData } from '../network/gossip.ts'
import { coalescedWriter, writeAtomic } from '../storage/identity.ts'
import { missing, readOrSetAside, setAside, type Damage } from '../storage/damaged.ts'
import { CertificateLog } from '../storage/certificate-log.ts'
import { HashEmbedder } from '../../capability-index/index.ts'
import { LOCAL_NETWORK, networkIds } from '../../protocols/network/index.ts'
import { failStopOnBug } from './fail-stop.ts'
import type { RpcService } from './rpc-service.ts'

export const CERTIFICATE_TOPIC = networkIds(LOCAL_NETWORK).certificateTopic

const hashEmbedder = new HashEmbedder()
/**
 * What the `embedding` equivalence rule compares answers with, on every peer and in
 * `agentmesh verify`: the offline hash embedder, deterministic to the bit. A remote embedder could
 * answer differently on different peers, and members must all compute the same classes.
 */
export const consensusEmbed: Embed = text => hashEmbedder.embedSync(text)
/** Certificates, one appended record each (node/storage/certificate-log.ts). */
const CERTIFICATE_LOG = 'certificates.log'
/** Where certificates were kept before the log (one CBOR list, rewritten whole): migrated once. */
const OLD_CERTIFICATES_FILE = 'certificates.cbor'
const DEFAULT_MAX_CERTIFICATES = 10_000
const BOOK_FILE = 'reputation.json'
/** Instance ids this peer took part in, one per line, appended before it first votes. */
const JOINED_FILE = 'joined.txt'
const JOINED_KEEP = 100_000

export interface ConsensusServiceInit {
  signer: Signer
  verifier: Verifier
  /** Where certificates and the reputation book are kept (none: memory only). */
  dir?: string
  timeouts?: Partial<Timeouts>
  /** For the `embedding` rule (default: `consensusEmbed`). */
  embed?: Embed
  onEvent?: (event: ConsensusServiceEvent) => void
  /** The network's certificate topic (default: the local network's). */
  topic?: string
  /** Certificates kept (default 10 000); the log is compacted when it holds twice as many. */
  maxCertificates?: number
  /** How long a member keeps an instance its requester has gone silent in (default 10 min, protocols/consensus/peer.ts). */
  memberGiveUpMs?: number
}

/** What the service takes from the libp2p node: gossipsub and the RPC service are services it depends on. */
export interface ConsensusServiceComponents {
  logger: ComponentLogger
  metrics?: Metrics
  pubsub: GossipSub
  rpc: RpcService
}

/** The machine's events, and a requester's instance that timed out here. */
export type ConsensusServiceEvent = ConsensusPeerEvent | { type: 'timeout', instance: string, timeoutMs: number }

export class ConsensusTimeoutError extends Error {
  override name = 'ConsensusTimeoutError'
}

/** A libp2p service: `services: { consensus: consensusService({ signer, verifier, dir }) }` after `pubsub` and `rpc`. */
export function consensusService (init: ConsensusServiceInit): (components: ConsensusServiceComponents) => ConsensusService {
  return components => new ConsensusService(components, init)
}

export class ConsensusService implements Startable {
  readonly [Symbol.toStringTag] = 'agentmesh/consensus'
  readonly [serviceCapabilities] = ['agentmesh/consensus']
  readonly [serviceDependencies] = ['@libp2p/pubsub', 'agentmesh/rpc']
  readonly #components: ConsensusServiceComponents
  readonly #init: ConsensusServiceInit
  readonly #logger: Logger
  readonly #waiting = new Map<string, Array<(result: { certificate: Certificate, summary: CertificateSummary }) => void>>()
  readonly #maxCertificates: number
  readonly #topic: string
  /** Made in `start`, from what the data directory holds. */
  #peer: ConsensusPeer | undefined
  #log: CertificateLog | undefined
  #saveBook: ReturnType<typeof coalescedWriter> | undefined
  #timer: NodeJS.Timeout | undefined
  #timerAt = Infinity
  #stopped = false
  #starting: Promise<void> | undefined

  constructor (components: ConsensusServiceComponents, init: ConsensusServiceInit) {
    this.#components = components
    this.#init = init
    this.#logger = components.logger.forComponent('agentmesh:consensus')
    this.#maxCertificates = init.maxCertificates ?? DEFAULT_MAX_CERTIFICATES
    this.#topic = init.topic ?? CERTIFICATE_TOPIC
    components.metrics?.registerMetric('agentmesh_consensus_certificates', { help: 'Certificates this peer holds (verified, at most maxCertificates)', calculate: () => this.#peer?.certificateIds().length ?? 0 })
    components.metrics?.registerMetric('agentmesh_certificate_log_failures', { help: 'Certificates that could not be appended to the log since start (0: the log holds all)', calculate: () => this.logFailures })
  }

  get #machine (): ConsensusPeer {
    if (this.#peer === undefined) throw new Error('the consensus service has not started')
    return this.#peer
  }

  /** Restores the saved book and certificates (verified again) from the data directory. */
  async start (): Promise<void> {
    this.#starting = this.#load()
    await this.#starting
  }

  async #load (): Promise<void> {
    const init = this.#init
    let book = new ReputationBook()
    let saved: Uint8Array[] = []
    let old: Uint8Array[] | undefined
    let joined: string[] = []
    let joinedUnknownUntil: number | undefined
    const damaged: Damage[] = []
    if (init.dir !== undefined) {
      await mkdir(init.dir, { recursive: true })
      const before = damaged.length
      joined = await readJoined(join(init.dir, JOINED_FILE), damaged)
      // Which instances it signed in is partly unknown: it sits out others' instances for as
      // long as members keep one alive (protocols/consensus/peer.ts joinedUnknownUntil).
      if (damaged.length > before) joinedUnknownUntil = Date.now() + (init.memberGiveUpMs ?? MEMBER_GIVE_UP_MS)
      // A file that does not read back is set aside (the next save would overwrite it) and said.
      const load = async <T>(name: string, parse: (bytes: Buffer) => T, lost: string): Promise<T | undefined> =>
        await readOrSetAside(join(init.dir!, name), parse, lost, damaged)
      book = await load(BOOK_FILE, b => ReputationBook.fromJSON(JSON.parse(b.toString('utf8'))), 'the reputation book: it starts again from the certificates kept (canary and feedback results are lost)') ?? book
      const opened = await CertificateLog.open(join(init.dir, CERTIFICATE_LOG), { log: this.#logger })
      this.#log = opened.log
      saved = opened.records
      damaged.push(...opened.damaged)
      old = await load(OLD_CERTIFICATES_FILE, b => {
        const list = decodeCanonical(b)
        if (!Array.isArray(list) || !list.every(x => x instanceof Uint8Array)) throw new Error('not a list of certificates')
        return list as Uint8Array[]
      }, 'the certificates in it: peers send them again on catch-up')
    }
    const log = this.#log
    const joinedFile = init.dir === undefined ? undefined : join(init.dir, JOINED_FILE)
    this.#peer = new ConsensusPeer({
      signer: init.signer,
      verifier: init.verifier,
      timeouts: init.timeouts,
      embed: init.embed ?? consensusEmbed,
      book,
      joined,
      maxCertificates: this.#maxCertificates,
      ...(init.memberGiveUpMs !== undefined ? { memberGiveUpMs: init.memberGiveUpMs } : {}),
      ...(joinedUnknownUntil !== undefined ? { joinedUnknownUntil } : {}),
      onCertificate: log === undefined ? undefined : bytes => { this.#append(bytes) },
      // Synchronous on purpose: the id is on disk before this peer signs anything in the instance,
      // so after a crash it never votes there again (it could contradict what it signed).
      onJoin: joinedFile === undefined ? undefined : id => { appendFileSync(joinedFile, `${id}\n`) }
    })
    if (init.dir !== undefined) {
      this.#saveBook = coalescedWriter(join(init.dir, BOOK_FILE), () => JSON.stringify(this.#machine.book.toJSON()), this.#logger)
    }
    this.damaged = damaged
    this.#run(this.#machine.restore([...old ?? [], ...saved], Date.now()))
    if (old !== undefined) {
      // Migration: the old file's certificates (verified) go into the log, which is durable before
      // the old file is deleted; a crash in between only migrates it again.
      await log!.compact(this.#retained())
      await unlink(join(init.dir!, OLD_CERTIFICATES_FILE))
    } else if (log !== undefined && log.records > 2 * this.#maxCertificates) {
      await log.compact(this.#retained())
    }
  }

  /** Once gossipsub runs: judge the certificate topic, subscribe to it, and take consensus traffic from the RPC service. */
  afterStart (): void {
    const { pubsub, rpc } = this.#components
    // Every certificate-topic message is judged before gossipsub forwards it: junk and forgeries
    // are rejected (the sender's topic score pays for them), known certificates ignored.
    pubsub.topicValidators.set(this.#topic, this.#validate)
    pubsub.addEventListener('subscription-change', this.#onSubscriptionChange)
    pubsub.subscribe(this.#topic)
    rpc.addEventListener('notify', this.#onNotify)
  }

  /** Files found damaged at start and set aside: the reputation book or certificates they held are lost here (peers resend certificates on connection). */
  damaged: Damage[] = []

  get book (): ReputationBook { return this.#machine.book }
  get peerId (): string { return this.#machine.peerId }
  certificateIds (): string[] { return this.#machine.certificateIds() }
  certificate (id: string): Uint8Array | undefined { return this.#machine.certificate(id) }

  /**
   * The committee statement for a subtask this peer requests, signed: members are the executors'
   * hosts and this peer, plus members drawn from `candidates` (by hash of the subtask) up to
   * `size` (at least 4); voting power and executor standing come from this peer's book.
   */
  /** A signed statement for a trusted subtask; `standings` (default this peer's book) weighs executors and members. */
  committee (o: Omit<CommitteeRequest, 'requester'>, standings: Standings = this.#machine.book): SignedCommittee {
    return signCommittee(committeeBody({ ...o, requester: this.#init.signer.peerId }, standings), this.#init.signer)
  }

  /**
   * Runs consensus on a statement this peer signed as requester, with the answers it holds.
   * Resolves with the certificate once the committee commits; rejects after `timeoutMs`.
   */
  async run (statement: SignedCommittee, answers: readonly Uint8Array[], timeoutMs: number): Promise<{ certificate: Certificate, summary: CertificateSummary }> {
    const { instance, effects } = this.#machine.start(statement.wire, answers, Date.now())
    const done = new Promise<{ certificate: Certificate, summary: CertificateSummary }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(instance)
        this.#machine.abandon(instance)
        this.#init.onEvent?.({ type: 'timeout', instance, timeoutMs })
        reject(new ConsensusTimeoutError(`the committee did not commit within ${timeoutMs} ms`))
      }, timeoutMs)
      const list = this.#waiting.get(instance) ?? []
      list.push(result => { clearTimeout(timer); resolve(result) })
      this.#waiting.set(instance, list)
    })
    this.#run(effects)
    // Committed already (from a certificate this peer had)? Then the instance says so.
    const decided = this.#machine.instance(instance)?.decided
    if (decided !== undefined) this.#resolve(instance, decided)
    return await done
  }

  /** The book changed outside consensus (a canary, user feedback): save it. */
  bookChanged (): void {
    this.#saveBook?.save()
  }

  /** A one-way message from another peer, through the RPC service. */
  readonly #onNotify = (e: CustomEvent<{ from: string, data: Uint8Array }>): void => {
    if (!this.#stopped && this.#peer !== undefined) this.#run(failStopOnBug(() => this.#machine.receive(e.detail.from, e.detail.data, Date.now())))
  }

  async stop (): Promise<void> {
    this.#stopped = true
    // libp2p starts services in parallel and stops them all when one fails: let a load under way
    // finish (its files opened, a migration written) before closing what it opened.
    await this.#starting?.catch(() => {})
    clearTimeout(this.#timer)
    const { pubsub, rpc } = this.#components
    rpc.removeEventListener('notify', this.#onNotify)
    pubsub.topicValidators.delete(this.#topic)
    pubsub.removeEventListener('subscription-change', this.#onSubscriptionChange)
    try { pubsub.unsubscribe(this.#topic) } catch {}
    await Promise.all([this.#log?.close(), this.#saveBook?.flush()])
  }

  /** Certificates that could not be appended to the log (each also a process warning); 0 when it holds all. */
  get logFailures (): number { return this.#log?.failures ?? 0 }

  #retained (): Uint8Array[] {
    return this.#machine.certificateIds().map(id => this.#machine.certificate(id)!)
  }

  /** A new certificate goes to the log at once; past twice the cap, the log is rewritten with the ones kept. */
  #append (bytes: Uint8Array): void {
    const log = this.#log!
    log.append(bytes)
    if (log.records > 2 * this.#maxCertificates && !log.compacting) {
      void log.compact(this.#retained()).catch(err => { this.#logger.error('could not compact %s: %s', log.path, (err as Error).message) })
    }
  }

  readonly #validate = (peer: PeerId, message: { data: Uint8Array }): TopicValidatorResult => {
    if (this.#stopped) return TopicValidatorResult.Ignore
    const { verdict, effects } = failStopOnBug(() => this.#machine.receiveGossip(peer.toString(), message.data, Date.now()))
    // An accepted message travels on through gossipsub itself; publishing it again would send it twice.
    this.#run(effects.filter(e => !(e.type === 'broadcast' && bytesEqual(e.data, message.data))))
    return VALIDATOR_RESULT[verdict]
  }

  readonly #onSubscriptionChange = (e: CustomEvent<SubscriptionChangeData>): void => {
    if (this.#stopped) return
    for (const { topic, subscribe } of e.detail.subscriptions) {
      if (topic !== this.#topic) continue
      if (subscribe) this.#run(this.#machine.peerConnected(e.detail.peerId.toString()))
      else this.#machine.peerDisconnected(e.detail.peerId.toString())
    }
  }

  #run (effects: Array<Effect<ConsensusPeerEvent>>): void {
    for (const e of effects) {
      if (e.type === 'send') this.#components.rpc.notify(e.to, e.data)
      else if (e.type === 'broadcast') void this.#components.pubsub.publish(this.#topic, e.data).catch(() => {})
      else if (e.type === 'timer') this.#arm(e.at)
      else this.#event(e.event)
    }
  }

  #event (event: ConsensusPeerEvent): void {
    if (event.type === 'committed') this.#resolve(event.instance, event.certificate, event.summary)
    if (event.type === 'committed' || event.type === 'accepted' || event.type === 'equivocation' || event.type === 'equivocator') {
      this.#saveBook?.save()
    }
    this.#init.onEvent?.(event)
  }

  #resolve (instance: string, certificate: Certificate, summary?: CertificateSummary): void {
    const waiting = this.#waiting.get(instance)
    if (waiting === undefined) return
    this.#waiting.delete(instance)
    const s = summary ?? this.#summaryOf(certificate)
    for (const resolve of waiting) resolve({ certificate, summary: s })
  }

  #summaryOf (certificate: Certificate): CertificateSummary {
    const check = verifyCertificate(certificate, this.#init.verifier, this.#init.embed ?? consensusEmbed)
    if (!check.ok) throw new Error(`a decided certificate does not verify: ${check.problems.join('; ')}`)
    return check.summary
  }

  /** One wall-clock timer for the machine's earliest deadline. */
  #arm (at: number): void {
    if (this.#stopped || at >= this.#timerAt) return
    clearTimeout(this.#timer)
    this.#timerAt = at
    this.#timer = setTimeout(() => {
      this.#timerAt = Infinity
      if (!this.#stopped) this.#run(this.#machine.tick(Date.now())) // the machine catches per instance
    }, Math.max(0, at - Date.now()))
  }
}

/**
 * The instances this peer signed in, one hex id per line, appended synchronously. Only the last
 * line can be torn by a crash (it was never acted on: the append comes before the signature);
 * any other line that is not an id means the file was damaged: it is set aside, the readable ids
 * are written back, and the damage is said (an id lost could let this peer sign twice there).
 */
export async function readJoined (file: string, damaged: Damage[]): Promise<string[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if (missing(err)) return []
    throw err
  }
  const lines = text.split('\n')
  const tail = lines.pop() ?? ''
  let joined = lines.filter(l => ID.test(l))
  const bad = lines.length - joined.length
  if (ID.test(tail)) joined.push(tail)
  if (bad > 0 || (tail !== '' && !ID.test(tail))) {
    // A cut last line is what a crash mid-append leaves (that id was never signed with) and also
    // what a truncated file looks like: said either way, since the second loses a real id.
    const what = bad > 0 ? `${bad} of ${lines.length} lines are not instance ids` : `its last line is cut short (${tail.length} of 64 hex digits)`
    damaged.push(await setAside(file, new Error(what),
      'which instances it signed in: it joins no other peer\'s instance for the member give-up time (10 min), so it cannot sign twice in one it forgot'))
  } else if (joined.length <= JOINED_KEEP && tail === '') {
    return joined
  }
  joined = joined.slice(-JOINED_KEEP)
  await writeAtomic(file, joined.length === 0 ? '' : joined.join('\n') + '\n')
  return joined
}

const ID = /^[0-9a-f]{64}$/
