/**
 * The simulated network: how long a message from one node to another takes, whether it arrives,
 * and which nodes can reach each other right now.
 *
 * Modelled: a base latency per link from the topology (uniform, drawn once per link; or a region
 * matrix), lognormal jitter per message, serialisation time from the message size and the link
 * bandwidth, independent loss, nodes that are down (crashed or churned out), and partitions that
 * split the nodes into groups that cannot reach each other until they heal.
 * Not modelled: congestion and queueing in the network (messages do not slow each other down),
 * TCP retransmission (a lost direct message is lost; the protocols' own timeouts deal with it),
 * connection set-up. NAT'd nodes and relays: sim/nat.ts, when the scenario has a `nat` block.
 */
import { DIRECT, type NatModel } from './nat.ts'
import { gaussian, hash01, type Rng } from './rng.ts'
import type { Scenario } from './scenario.ts'

export class Network {
  readonly size: number
  /** Region index per node (0 for a uniform topology). */
  readonly region: Uint8Array
  /** 1 while a node is up. */
  readonly up: Uint8Array
  /** Partition group per node; meaningful while `partitioned`. */
  readonly group: Uint16Array
  partitioned = false
  readonly #topology: Scenario['topology']
  readonly #seed: number
  readonly #loss: number
  /** Milliseconds per byte on a link. */
  readonly #msPerByte: number

  constructor (scenario: Scenario, nodes: number, rng: Rng) {
    this.size = nodes
    this.#topology = scenario.topology
    this.#seed = scenario.seed
    this.#loss = scenario.network.loss
    this.#msPerByte = 8 / (scenario.network.bandwidthMbps * 1000)
    this.region = new Uint8Array(nodes)
    this.up = new Uint8Array(nodes).fill(1)
    this.group = new Uint16Array(nodes)
    const t = scenario.topology
    if (t.kind === 'regions') {
      const total = t.regions.reduce((s, r) => s + r.share, 0)
      for (let i = 0; i < nodes; i++) {
        let x = rng() * total
        let r = 0
        while (r < t.regions.length - 1 && x >= t.regions[r]!.share) { x -= t.regions[r]!.share; r++ }
        this.region[i] = r
      }
    }
  }

  /** The link's latency without jitter or size, the same every time it is asked. */
  baseLatency (from: number, to: number): number {
    if (from === to) return 0.05
    const t = this.#topology
    const [a, b] = from < to ? [from, to] : [to, from]
    if (t.kind === 'uniform') return t.latencyMs[0] + (t.latencyMs[1] - t.latencyMs[0]) * hash01(this.#seed, a, b)
    // Within a region's matrix entry, links still differ a little (±10%).
    return t.latencyMs[this.region[from]!]![this.region[to]!]! * (0.9 + 0.2 * hash01(this.#seed, a, b))
  }

  /** One message's delay: base latency with lognormal jitter, plus serialisation of `bytes`. */
  delay (from: number, to: number, bytes: number, rng: Rng): number {
    const j = this.#topology.jitter
    const jitter = j === 0 ? 1 : Math.exp(j * gaussian(rng) - j * j / 2)
    return this.baseLatency(from, to) * jitter + bytes * this.#msPerByte
  }

  /** Whether `to` is up and on `from`'s side of any partition. */
  reachable (from: number, to: number): boolean {
    return this.up[to] === 1 && this.up[from] === 1 && (!this.partitioned || this.group[from] === this.group[to])
  }

  /** Independent loss on the link. */
  lost (rng: Rng): boolean {
    return this.#loss > 0 && rng() < this.#loss
  }

  /** Splits nodes into `groups` by a seeded shuffle; `heal` ends it. */
  partition (groups: number, rng: Rng): void {
    for (let i = 0; i < this.size; i++) this.group[i] = Math.min(groups - 1, Math.floor(rng() * groups))
    this.partitioned = true
  }

  heal (): void {
    this.partitioned = false
  }
}

/**
 * Gossip over a gossipsub-like mesh (degree D, heartbeat H), modelled rather than flooded
 * message by message: a record reaches a node after a path of h hops through random relays, h
 * drawn around log(N)/log(D−1) (the diameter of a random D-regular graph); each hop takes that
 * link's delay, and a hop lost to link loss is repaired by the next heartbeat's IHAVE/IWANT
 * (up to H later, plus a round trip). Every subscribed node receives every record; each receiver
 * validates it with its own capability table, as a real peer does. With NAT, a hop into a NAT'd
 * node goes through its relay unless that mesh link was hole-punched (sim/nat.ts): two links,
 * each with its own delay and loss, plus the relay's forwarding. Not modelled: duplicate
 * deliveries (gossipsub's seen-cache drops them before validation) and per-peer scoring.
 */
export class GossipModel {
  readonly #net: Network
  readonly #hops: number
  readonly #heartbeatMs: number
  readonly #nat: NatModel | undefined

  constructor (net: Network, degree: number, heartbeatMs: number, nat?: NatModel) {
    this.#net = net
    this.#hops = Math.max(1, Math.log(net.size) / Math.log(Math.max(2, degree - 1)))
    this.#heartbeatMs = heartbeatMs
    this.#nat = nat
  }

  /** Delay from `origin` publishing to `target` holding the record, or undefined if never (the target is down). */
  delay (origin: number, target: number, bytes: number, rng: Rng): number {
    if (origin === target) return 0
    const h = Math.max(1, Math.round(this.#hops + 0.5 * gaussian(rng)))
    let at = origin
    let total = 0
    for (let hop = 0; hop < h; hop++) {
      const next = hop === h - 1 ? target : Math.floor(rng() * this.#net.size)
      const relay = this.#nat === undefined ? DIRECT : this.#nat.gossipHop(next, bytes, rng)
      if (relay === DIRECT) {
        total = this.#link(total, at, next, bytes, rng)
      } else {
        total = this.#link(total, at, relay, bytes, rng) + this.#nat!.forwardMs(rng)
        total = this.#link(total, relay, next, bytes, rng)
      }
      at = next
    }
    return total
  }

  /** `total` plus one link's delay, and the heartbeat's repair if the link lost the message. */
  #link (total: number, from: number, to: number, bytes: number, rng: Rng): number {
    const d = this.#net.delay(from, to, bytes, rng)
    total += d
    if (this.#net.lost(rng)) total += rng() * this.#heartbeatMs + 2 * d
    return total
  }
}
