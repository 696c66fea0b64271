/**
 * What the harness and the rogue process say to each other over IPC, and the settings every
 * attack reads. The rogue runs in its own process so that its attack load never slows the
 * harness that measures the honest peers' API latency.
 */

export const ATTACKS = [
  'baseline', 'junk-gossip', 'oversized-gossip', 'replayed-gossip', 'bad-signature-gossip', 'rpc-spam',
  'sybil-10k', 'sybil-keys', 'equivocation', 'slow-body-http', 'malicious-page'
] as const
export type AttackName = typeof ATTACKS[number]

/** One honest peer as the rogue sees it: where to reach its libp2p host and its API. */
export interface Target { peerId: string, multiaddr: string, apiPort: number }

export interface AttackSettings {
  /** Gossip messages per second for the flooding attacks (all topics together). */
  gossipRate: number
  /** junk-gossip opens with this many messages per topic at once, as fast as the rogue can publish. */
  gossipBurst: number
  /** Sizes cycled through by oversized-gossip (bytes). */
  oversizedBytes: number[]
  oversizedRate: number
  /** RPC messages per second per honest peer, and streams opened per honest peer. */
  rpcRate: number
  rpcStreams: number
  /** Agents advertised by the Sybil attacks, and how many keys sybil-keys spreads them over. */
  sybilAgents: number
  sybilKeys: number
  sybilRate: number
  /** Slow-body HTTP connections per honest peer, and one body byte per connection every this many ms. */
  slowConnections: number
  slowByteEveryMs: number
  /**
   * Proof of work the harness network asks of every peer id (network file `idWorkBits`), honest
   * peers and the rogue alike; sybil-keys must mint its keys with it. 0: off.
   */
  idWorkBits: number
}

export const DEFAULT_SETTINGS: AttackSettings = {
  gossipRate: 200,
  gossipBurst: 3000,
  oversizedBytes: [64 * 1024 + 1, 1024 * 1024, 4 * 1024 * 1024 - 1024, 4 * 1024 * 1024 + 1024],
  oversizedRate: 4,
  rpcRate: 400,
  rpcStreams: 256,
  sybilAgents: 10_000,
  sybilKeys: 1000,
  sybilRate: 1000,
  slowConnections: 1000,
  slowByteEveryMs: 1000,
  idWorkBits: 16
}

/** What the rogue did in one attack. `firstAttackAt` is the wall clock of its first attack message. */
export interface AttackReport {
  sent: number
  /** Sends that failed on the rogue's side (stream reset, publish refused, connection refused). */
  sendErrors: number
  firstAttackAt: number | null
  /** Attack-specific observations (responses seen, connections held, …). */
  detail: Record<string, unknown>
}

export type RogueCommand =
  | { type: 'dial', addrs: string[] }
  | { type: 'attack', attack: AttackName, durationMs: number, targets: Target[], settings: AttackSettings }
  | { type: 'stop' }

export type RogueReply =
  | { type: 'ready', peerId: string, multiaddrs: string[] }
  | { type: 'dialed', failures: Array<{ addr: string, error: string }> }
  | { type: 'attacked', report: AttackReport }
  | { type: 'fatal', message: string }
