/**
 * NAT'd nodes and relays (a scenario's `nat` block), the way libp2p reaches a node it cannot
 * dial: the node holds a reservation on a public relay (circuit relay v2); a peer that wants it
 * dials that relay, which forwards both ways; the relayed connection then tries once to become
 * direct by hole punching (DCUtR). A NAT'd node dials public nodes directly, and a connection
 * carries traffic both ways whoever opened it.
 *
 * Modelled: who is NAT'd and which relay each reserves on (seeded); one connection per pair —
 * direct, or relayed, or relayed until a successful hole punch completes (one relayed round trip
 * to agree, then one direct link); a relayed message's two legs plus the relay's forwarding
 * delay; the bytes each relay forwards; re-reservation on another relay when one goes down (at
 * once); connections closing when an end, or the relay of a not yet upgraded one, goes down.
 * Gossip: a mesh link into a NAT'd node is a hole-punched one with the same probability, drawn
 * per hop (the gossip path's intermediate nodes are stand-ins, not kept links).
 * Not modelled: reservation slots and relay bandwidth limits (a relay takes every client and
 * never slows down), the time to notice a relay is gone, hole-punch retries.
 */
import { percentile, type Metrics, type TaskRecord } from './metrics.ts'
import type { Network } from './network.ts'
import { between, pick, sample, type Rng } from './rng.ts'
import type { Nat } from './scenario.ts'

/** What `route` answers besides a relay's node index. */
export const DIRECT = -1
/** The target is NAT'd and no relay of its is up: it cannot be reached. */
export const UNREACHABLE = -2

interface Connection {
  /** The relay it goes through until `directAt`; DIRECT when it was dialled direct. */
  relay: number
  directAt: number
  /** The ends' and the relay's epochs when it opened: a crash of any since closes it. */
  epochLow: number
  epochHigh: number
  epochRelay: number
  /** Over the pair's connections so far: one was relayed; a hole punch upgraded one. */
  relayed: boolean
  punched: boolean
}

export interface NatSummary {
  nattedNodes: number
  relays: number
  /** Bytes forwarded per relay node, over the configured relays. */
  relayBytesMean: number
  relayBytesMax: number
  /** Of the bytes relays forwarded, the share that was gossip (the rest: rpc and consensus messages). */
  relayGossipShare: number
  /** Of messages (rpc, consensus) between pairs with a NAT'd end, the share that went through a relay. */
  relayedShare: number
  messagesRelayed: number
  /** Of gossip hops into NAT'd nodes, the share that went through a relay. */
  gossipRelayedShare: number
  /** Pairs that opened a relayed connection, and of them those a hole punch upgraded. */
  pairsRelayed: number
  pairsUpgraded: number
  /** Tasks whose first execute call went through a relay, and completed-task latency p50 for those and the others. */
  tasksRelayed: number
  latencyP50RelayedMs: number
  latencyP50DirectMs: number
  /** Bytes on the wire per task: every message once, plus the relay's second leg of relayed ones. */
  wireBytesPerTask: number
}

export class NatModel {
  readonly config: Nat
  /** 1 for a node behind NAT. */
  readonly natted: Uint8Array
  /** Relay node indices, ascending. */
  readonly relays: number[]
  /** The relay holding each NAT'd node's reservation; -1 for a public node, or when no relay is up. */
  readonly relayOf: Int32Array
  /** Bytes each node forwarded as a relay. */
  readonly relayBytes: Float64Array
  readonly #isRelay: Set<number>
  readonly #net: Network
  readonly #metrics: Metrics
  readonly #rng: Rng
  /** Bumped when a node goes down: its connections close. */
  readonly #epoch: Uint32Array
  readonly #connections = new Map<number, Connection>()

  constructor (config: Nat, net: Network, requesters: ReadonlySet<number>, metrics: Metrics, rng: Rng) {
    const n = net.size
    this.config = config
    this.#net = net
    this.#metrics = metrics
    this.#rng = rng
    this.natted = new Uint8Array(n)
    for (const i of sample(rng, n, Math.round(config.fraction * n))) this.natted[i] = 1
    // Relays are infrastructure: requesters (the measured clients) only if too few others are public.
    const open = sample(rng, n, n).filter(i => this.natted[i] === 0)
    this.relays = [...open.filter(i => !requesters.has(i)), ...open.filter(i => requesters.has(i))].slice(0, config.relays).sort((a, b) => a - b)
    this.#isRelay = new Set(this.relays)
    this.relayOf = new Int32Array(n).fill(-1)
    for (let i = 0; i < n; i++) if (this.natted[i] === 1) this.relayOf[i] = this.relays[pick(rng, this.relays.length)]!
    this.relayBytes = new Float64Array(n)
    this.#epoch = new Uint32Array(n)
  }

  /**
   * How a message from `from` to `to` goes now: DIRECT, through a relay (its node index), or
   * UNREACHABLE. Opens the pair's connection, dialled by `from`, if it has none open.
   */
  route (from: number, to: number, now: number): number {
    if (this.natted[from] === 0 && this.natted[to] === 0) return DIRECT
    const low = Math.min(from, to)
    const high = Math.max(from, to)
    const key = low * this.natted.length + high
    let c = this.#connections.get(key)
    if (c !== undefined && this.#isOpen(c, low, high, now)) return now >= c.directAt ? DIRECT : c.relay
    let relay = DIRECT
    let directAt = -Infinity
    if (this.natted[to] === 1) {
      relay = this.relayOf[to]!
      if (relay < 0) return UNREACHABLE
      const net = this.#net
      // DCUtR: the ends agree over the relay (a round trip), then dial each other at once.
      directAt = this.#rng() < this.config.holePunch ? now + 2 * (net.baseLatency(from, relay) + net.baseLatency(relay, to)) + net.baseLatency(from, to) : Infinity
    }
    if (c === undefined) {
      c = { relay, directAt, epochLow: 0, epochHigh: 0, epochRelay: 0, relayed: false, punched: false }
      this.#connections.set(key, c)
    }
    c.relay = relay
    c.directAt = directAt
    c.epochLow = this.#epoch[low]!
    c.epochHigh = this.#epoch[high]!
    c.epochRelay = relay < 0 ? 0 : this.#epoch[relay]!
    if (relay >= 0) c.relayed = true
    if (relay >= 0 && directAt < Infinity) c.punched = true
    return now >= directAt ? DIRECT : relay
  }

  #isOpen (c: Connection, low: number, high: number, now: number): boolean {
    if (c.epochLow !== this.#epoch[low] || c.epochHigh !== this.#epoch[high]) return false
    // A relayed connection closes with its relay; an upgraded one no longer needs it.
    return c.relay < 0 || now >= c.directAt || c.epochRelay === this.#epoch[c.relay]
  }

  /** Counts one message on its way: direct or relayed, and the bytes its relay forwards. */
  carried (from: number, to: number, relay: number, bytes: number): void {
    if (relay >= 0) {
      this.relayBytes[relay]! += bytes
      this.#metrics.nat.messagesRelayed++
    } else if (this.natted[from] === 1 || this.natted[to] === 1) {
      this.#metrics.nat.messagesDirect++
    }
  }

  /** The relay a gossip hop into `to` goes through (its bytes counted there), or DIRECT. */
  gossipHop (to: number, bytes: number, rng: Rng): number {
    if (this.natted[to] === 0) return DIRECT
    const relay = this.relayOf[to]!
    // With no relay up, its punched mesh links are the only way in.
    if (relay < 0 || rng() < this.config.holePunch) {
      this.#metrics.nat.gossipHopsDirect++
      return DIRECT
    }
    this.#metrics.nat.gossipHopsRelayed++
    this.#metrics.nat.gossipBytesRelayed += bytes
    this.relayBytes[relay]! += bytes
    return relay
  }

  /** The forwarding delay a relay adds to one message. */
  forwardMs (rng: Rng): number {
    return between(rng, this.config.relayExtraMs)
  }

  /** A node went down: its connections close; a relay's clients reserve on another relay that is up. */
  down (node: number): void {
    this.#epoch[node]!++
    if (!this.#isRelay.has(node)) return
    const live = this.#liveRelays()
    for (let i = 0; i < this.relayOf.length; i++) {
      if (this.relayOf[i] === node) this.relayOf[i] = live.length === 0 ? -1 : live[pick(this.#rng, live.length)]!
    }
  }

  /** A relay came back: NAT'd nodes left without a reservation take one. */
  up (node: number): void {
    if (!this.#isRelay.has(node)) return
    const live = this.#liveRelays()
    for (let i = 0; i < this.relayOf.length; i++) {
      if (this.natted[i] === 1 && this.relayOf[i]! < 0) this.relayOf[i] = live[pick(this.#rng, live.length)]!
    }
  }

  #liveRelays (): number[] {
    return this.relays.filter(r => this.#net.up[r] === 1)
  }

  summary (tasks: readonly TaskRecord[], totalBytes: number): NatSummary {
    const m = this.#metrics.nat
    let pairsRelayed = 0
    let pairsUpgraded = 0
    for (const c of this.#connections.values()) {
      if (c.relayed) pairsRelayed++
      if (c.punched) pairsUpgraded++
    }
    const relayBytes = this.relays.map(r => this.relayBytes[r]!)
    const forwarded = relayBytes.reduce((s, x) => s + x, 0)
    const p50 = (relayed: boolean): number => percentile(tasks.filter(t => t.status === 'done' && (t.relayed === true) === relayed).map(t => t.finishedAt - t.arrivedAt).sort((a, b) => a - b), 0.5)
    return {
      nattedNodes: this.natted.reduce((s, x) => s + x, 0),
      relays: this.relays.length,
      relayBytesMean: relayBytes.length === 0 ? 0 : forwarded / relayBytes.length,
      relayBytesMax: Math.max(0, ...relayBytes),
      relayGossipShare: m.gossipBytesRelayed / forwarded,
      relayedShare: m.messagesRelayed / (m.messagesRelayed + m.messagesDirect),
      messagesRelayed: m.messagesRelayed,
      gossipRelayedShare: m.gossipHopsRelayed / (m.gossipHopsRelayed + m.gossipHopsDirect),
      pairsRelayed,
      pairsUpgraded,
      tasksRelayed: tasks.filter(t => t.relayed === true).length,
      latencyP50RelayedMs: p50(true),
      latencyP50DirectMs: p50(false),
      wireBytesPerTask: (totalBytes + forwarded) / tasks.length
    }
  }
}
