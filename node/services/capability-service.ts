/**
 * Drives the capability table (protocols/capability) over libp2p: gossip for records, a
 * length-prefixed stream per peer for anti-entropy, node timers for the table's ticks.
 *
 * @example
 * ```ts
 * const node = await createLibp2p({
 *   services: { pubsub: gossip(), capability: capabilityService({ ttlMs: 60_000 }) }, ...
 * })
 * node.services.capability.advertise(localAgent)
 * node.services.capability.addEventListener('agent:added', e => console.log(e.detail.body.agent))
 * ```
 */
import { serviceCapabilities, serviceDependencies, TypedEventEmitter, type ComponentLogger, type CounterGroup, type Logger, type Metrics, type PeerId, type PrivateKey, type Startable, type Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import {
  CAPABILITY_PROTOCOL, CAPABILITY_TOPIC, CapabilityTable, directLimits, packBundles,
  type LocalAgent, type RemovalReason, type SignedVcv, type TableEvent
} from '../../protocols/capability/index.ts'
import type { Effect } from '../../protocols/effects.ts'
import type { Verifier } from '../../protocols/identity.ts'
import { ed25519Signer, ed25519Verifier } from '../network/crypto.ts'
import { openStreamTo } from '../network/streams.ts'
import { VALIDATOR_RESULT, type GossipSub, type SubscriptionChangeData } from '../network/gossip.ts'
import { PeerLimits } from '../network/peer-limits.ts'
import { TimeSlicer } from './time-slicer.ts'
import { failStopOnBug } from './fail-stop.ts'
import { gossipReason, oneOf, VERDICTS, type GossipReason, type Verdict } from './metric-labels.ts'

/** A gossip message waiting for validation counts one unit of its sender's queue share per this many bytes. */
const WEIGHT_UNIT_BYTES = 16 * 1024

export interface CapabilityServiceInit {
  /** Publish records in bundles (default true); false sends each as its own message (the bench's gossipsub-defaults baseline). */
  bundle?: boolean
  /** Delay before republishing a record learned off-gossip, unless gossip brings it first (default 1 s; see CapabilityTableInit). */
  republishDelayMs?: number
  /** Checks record signatures (default: Ed25519 on node:crypto). */
  verifier?: Verifier
  /** Lifetime of this host's VCVs (default 60 s). */
  ttlMs?: number
  antiEntropyIntervalMs?: number
  maxSkewMs?: number
  /** Versions used by a previous run, so a restart never reuses one. */
  versions?: Record<string, number>
  /** Wall clock (ms). Only drivers read clocks; protocols get the time from here. */
  now?: () => number
  /** The network's topic and protocol (default: the local network's). */
  topic?: string
  protocol?: string
  /** Agents one remote host may have in the table (the network file's `maxAgentsPerHost`). */
  maxAgentsPerHost?: number
  /** Proof of work every host id must show (the network file's `idWorkBits`). */
  minIdWorkBits?: number
  /** Per-peer budget for anti-entropy messages (digests and batches); default PeerLimits' defaults. */
  limits?: PeerLimits
}

export interface CapabilityServiceComponents {
  privateKey: PrivateKey
  registrar: Registrar
  connectionManager: ConnectionManager
  logger: ComponentLogger
  pubsub: GossipSub
  metrics?: Metrics
}

export interface CapabilityEvents {
  'agent:added': CustomEvent<SignedVcv>
  'agent:updated': CustomEvent<SignedVcv>
  'agent:removed': CustomEvent<{ agent: string, reason: RemovalReason }>
  /** A local agent was signed anew: persist `versions()`. */
  'agent:advertised': CustomEvent<SignedVcv>
  'equivocation': CustomEvent<{ host: string, evidence: [SignedVcv, SignedVcv] }>
  'rejected': CustomEvent<{ from: string | undefined, reason: string }>
}

export interface CapabilityService extends TypedEventEmitter<CapabilityEvents> {
  advertise (agent: LocalAgent): void
  /** Throws a ValidationError if the agent could not be advertised; changes nothing. */
  check (agent: LocalAgent): void
  withdraw (name: string): void
  /** Every verified, unexpired VCV, this host's own included. */
  agents (): SignedVcv[]
  /** One verified VCV by agent id. */
  get (agent: string): SignedVcv | undefined
  versions (): Record<string, number>
  flaggedHosts (): string[]
  /** The gossip topic this service's records travel on (the network's). */
  readonly topic: string
  /** Every live signed record, to save with the peer's state. */
  records (): Uint8Array[]
  /** Reloads saved records, each verified again; this host's own are skipped. */
  restore (records: Uint8Array[]): void
}


class DefaultCapabilityService extends TypedEventEmitter<CapabilityEvents> implements CapabilityService, Startable {
  readonly #components: CapabilityServiceComponents
  readonly #table: CapabilityTable
  readonly #now: () => number
  readonly #topic: string
  readonly #limits: PeerLimits
  readonly #slicer = new TimeSlicer()
  /** Gossip verdicts, and why records were refused (registered through the metrics component, when the node has one). */
  readonly #verdicts: CounterGroup<Verdict> | undefined
  readonly #refused: CounterGroup<GossipReason> | undefined
  readonly #bundle: boolean
  get topic (): string { return this.#topic }
  readonly #protocol: string
  readonly #log: Logger
  readonly #outbound = new Map<string, Promise<LengthPrefixedStream<Stream> | undefined>>()
  #timer: NodeJS.Timeout | undefined
  readonly #toPublish: Uint8Array[] = []
  #flush: NodeJS.Immediate | undefined
  #topologyId: string | undefined
  #running = false

  constructor (components: CapabilityServiceComponents, init: CapabilityServiceInit) {
    super()
    this.#components = components
    this.#now = init.now ?? Date.now
    this.#topic = init.topic ?? CAPABILITY_TOPIC
    this.#protocol = init.protocol ?? CAPABILITY_PROTOCOL
    this.#limits = init.limits ?? new PeerLimits()
    this.#verdicts = components.metrics?.registerCounterGroup('agentmesh_capability_gossip_total', { label: 'verdict', help: "Gossiped capability records by the validator's verdict (accept, ignore, reject)" })
    this.#refused = components.metrics?.registerCounterGroup('agentmesh_capability_gossip_refused_total', { label: 'reason', help: 'Gossiped capability records ignored or rejected, by reason class' })
    this.#bundle = init.bundle ?? true
    this.#log = components.logger.forComponent('agentmesh:capability')
    this.#table = new CapabilityTable({
      signer: ed25519Signer(components.privateKey),
      verifier: init.verifier ?? ed25519Verifier(),
      random: Math.random,
      versions: init.versions,
      ttlMs: init.ttlMs,
      antiEntropyIntervalMs: init.antiEntropyIntervalMs,
      maxSkewMs: init.maxSkewMs,
      maxAgentsPerHost: init.maxAgentsPerHost,
      minIdWorkBits: init.minIdWorkBits,
      republishDelayMs: init.republishDelayMs ?? 1000
    })
  }

  readonly [Symbol.toStringTag] = 'agentmesh/capability'
  readonly [serviceCapabilities] = ['agentmesh/capability']
  readonly [serviceDependencies] = ['@libp2p/pubsub']

  async start (): Promise<void> {
    this.#running = true
    await this.#components.registrar.handle(this.#protocol, (stream, connection) => {
      void this.#readInbound(stream, connection.remotePeer)
    }, { runOnLimitedConnection: true })
  }

  async afterStart (): Promise<void> {
    const pubsub = this.#components.pubsub
    // Validation runs in time slices with a bounded queue: a flood of valid records cannot hold
    // the event loop, and past the queue's bound (or the sender's share of it) a record is ignored:
    // not forwarded, not penalised; anti-entropy or the next re-issue brings it again.
    pubsub.topicValidators.set(this.#topic, async (peer, message) => await this.#slicer.run(peer.toString(), () => {
      const outcome = failStopOnBug(() => this.#table.receiveGossip(message.data, peer.toString(), this.#now()))
      this.#run(outcome.effects)
      if (outcome.flood !== undefined) this.#limits.allow(peer.toString(), outcome.flood === 'quota' ? 'over-quota' : 'gossip-flood')
      if (outcome.verdict !== 'accept') this.#log.trace('gossip from %p: %s (%s)', peer, outcome.verdict, outcome.reason)
      this.#count(outcome.verdict, outcome.reason)
      return VALIDATOR_RESULT[outcome.verdict]
    }, cause => {
      // Only a full share is the sender's doing; a full queue may be other senders'.
      if (cause === 'source') this.#limits.allow(peer.toString(), 'gossip-flood')
      this.#count('ignore', 'validation queue full')
      return VALIDATOR_RESULT.ignore
    }, Math.max(1, Math.ceil(message.data.byteLength / WEIGHT_UNIT_BYTES))))
    // Anti-entropy starts when a peer joins the topic, not when it connects: before its
    // subscription arrives our publishes skip it, so the digest must cover everything up to then.
    pubsub.addEventListener('subscription-change', this.#onSubscriptionChange)
    pubsub.subscribe(this.#topic)
    this.#topologyId = await this.#components.registrar.register(this.#protocol, {
      onDisconnect: (peer) => {
        this.#table.peerDisconnected(peer.toString())
        this.#outbound.delete(peer.toString())
      }
    })
  }

  readonly #onSubscriptionChange = (e: CustomEvent<SubscriptionChangeData>): void => {
    const peer = e.detail.peerId.toString()
    for (const { topic, subscribe } of e.detail.subscriptions) {
      if (topic !== this.#topic) continue
      if (subscribe) this.#run(this.#table.peerConnected(peer, this.#now()))
      else this.#table.peerDisconnected(peer)
    }
  }

  async stop (): Promise<void> {
    this.#running = false
    clearTimeout(this.#timer)
    clearImmediate(this.#flush)
    this.#flush = undefined
    this.#toPublish.length = 0
    if (this.#topologyId !== undefined) this.#components.registrar.unregister(this.#topologyId)
    this.#components.pubsub.removeEventListener('subscription-change', this.#onSubscriptionChange)
    this.#components.pubsub.topicValidators.delete(this.#topic)
    await this.#components.registrar.unhandle(this.#protocol)
    const streams = await Promise.all(this.#outbound.values())
    this.#outbound.clear()
    await Promise.all(streams.map(async s => s?.unwrap().close().catch(() => {})))
  }

  advertise (agent: LocalAgent): void { this.#run(this.#table.advertise(agent, this.#now())) }
  check (agent: LocalAgent): void { this.#table.check(agent) }
  withdraw (name: string): void { this.#run(this.#table.withdraw(name, this.#now())) }
  agents (): SignedVcv[] { return this.#table.agents() }
  get (agent: string): SignedVcv | undefined { return this.#table.get(agent) }
  versions (): Record<string, number> { return this.#table.versions() }
  flaggedHosts (): string[] { return this.#table.flaggedHosts() }
  records (): Uint8Array[] { return this.#table.records(this.#now()) }
  restore (records: Uint8Array[]): void { this.#run(this.#table.restore(records, this.#now())) }

  /** Carries out what the table asked for. */
  /** One gossiped record's verdict, in the metrics (label values from fixed lists: a peer cannot add series). */
  #count (verdict: Verdict, reason: string | undefined): void {
    const v = oneOf(verdict, VERDICTS, 'reject')
    this.#verdicts?.increment({ [v]: true })
    if (v !== 'accept') this.#refused?.increment({ [gossipReason(v, reason)]: true })
  }

  #run (effects: Array<Effect<TableEvent>>): void {
    if (!this.#running) return
    for (const effect of effects) {
      switch (effect.type) {
        case 'broadcast':
          this.#queueBroadcast(effect.data)
          break
        case 'send':
          this.#send(effect.to, effect.data)
          break
        case 'timer':
          clearTimeout(this.#timer)
          this.#timer = setTimeout(() => { this.#run(this.#table.tick(this.#now())) }, Math.max(0, effect.at - this.#now()))
          this.#timer.unref()
          break
        case 'event':
          this.#dispatch(effect.event)
          break
      }
    }
  }

  /**
   * Records to publish wait for the end of this turn of the event loop and go out as bundles
   * (protocols/capability/bundle.ts): a host advertising its agents one by one, a refresh of all
   * of them, or a batch learned by anti-entropy costs one gossip message, not one per record.
   */
  #queueBroadcast (record: Uint8Array): void {
    this.#toPublish.push(record)
    this.#flush ??= setImmediate(() => {
      this.#flush = undefined
      const records = this.#toPublish.splice(0)
      if (!this.#running) return
      for (const bundle of this.#bundle ? packBundles(records) : records) {
        this.#components.pubsub.publish(this.#topic, bundle)
          .catch(err => { this.#log('publish failed: %e', err) }) // no subscribers yet, say: routine
      }
    })
  }

  #dispatch (e: TableEvent): void {
    switch (e.type) {
      case 'added': this.safeDispatchEvent('agent:added', { detail: e.vcv }); break
      case 'updated': this.safeDispatchEvent('agent:updated', { detail: e.vcv }); break
      case 'removed': this.safeDispatchEvent('agent:removed', { detail: { agent: e.agent, reason: e.reason } }); break
      case 'advertised': this.safeDispatchEvent('agent:advertised', { detail: e.vcv }); break
      case 'equivocation':
        this.#log('host %s signed two different VCVs with one version', e.host) // said as an `equivocation` event
        this.safeDispatchEvent('equivocation', { detail: { host: e.host, evidence: e.evidence } })
        break
      case 'rejected':
        this.#log('rejected a record from %s: %s', e.from, e.reason)
        this.safeDispatchEvent('rejected', { detail: { from: e.from, reason: e.reason } })
        break
    }
  }

  /**
   * One reused outbound stream per peer (a new stream per message costs ~8x the round trip).
   * Writes to a peer are chained in order; after a failure the next send opens a new stream.
   */
  #send (peer: string, data: Uint8Array): void {
    const previous = this.#outbound.get(peer) ?? Promise.resolve(undefined)
    const next: Promise<LengthPrefixedStream<Stream> | undefined> = previous
      .then(async lp => {
        const stream = lp ?? lpStream(await openStreamTo(this.#components.connectionManager, peerIdFromString(peer), this.#protocol), { maxDataLength: directLimits.maxMessageBytes })
        await stream.write(data)
        return stream
      })
      .catch(err => {
        this.#log('send to %s failed: %e', peer, err) // the peer went away: routine
        return undefined
      })
    this.#outbound.set(peer, next)
  }

  async #readInbound (stream: Stream, peer: PeerId): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: directLimits.maxMessageBytes })
    try {
      while (this.#running) {
        const message = await lp.read()
        // Over budget: dropped unread (a batch can hold many records, each a signature check).
        if (!this.#limits.allow(peer.toString(), 'anti-entropy')) continue
        const outcome = failStopOnBug(() => this.#table.receiveDirect(peer.toString(), message.subarray(), this.#now()))
        this.#run(outcome.effects)
        if (outcome.verdict === 'reject') {
          // A peer that sends garbage gets its stream closed, not a hanging read.
          stream.abort(new Error(`rejected: ${outcome.reason ?? 'invalid message'}`))
          return
        }
      }
    } catch (err) {
      if (stream.status === 'open') stream.abort(err as Error)
    }
  }
}

export function capabilityService (init: CapabilityServiceInit = {}): (components: CapabilityServiceComponents) => CapabilityService {
  return (components) => new DefaultCapabilityService(components, init)
}
