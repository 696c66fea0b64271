/**
 * Per-peer request rates: each kind of inbound request (remote execution, beacon, one-way consensus
 * messages, anti-entropy exchanges) has a budget per second per peer. A request over budget is
 * refused (the caller answers "rate limited" or drops it); a peer that keeps sending far past its
 * budget is reported as abusive, and the peer hangs up on it and refuses it for a while.
 *
 * Budgets sit well above what an honest peer sends: a requester beacons its top-L hosts once per
 * subtask, a committee member sends a handful of messages per round, anti-entropy runs every 15 s.
 */
import { RateLimiter } from '@libp2p/utils'

export type RequestKind = 'execute' | 'beacon' | 'notify' | 'anti-entropy' | 'invalid' | 'gossip-flood' | 'over-quota'

export const DEFAULT_RATES: Record<RequestKind, number> = {
  execute: 50,
  beacon: 100,
  notify: 400,
  'anti-entropy': 20,
  /** Garbage or oversized RPC frames: honest peers send none, so a few a second already count. */
  invalid: 2,
  /**
   * Gossip records dropped because of their sender: new hosts past its admission budget
   * (protocols/capability/admission.ts), or its share of the validation queue full. An honest
   * neighbour relays at most what its own neighbours' budgets let in, a few hundred in a burst, far
   * slower than a peer validates; a flooder sends thousands a second and is cut off within seconds.
   */
  'gossip-flood': 100,
  /**
   * Records of a host's own agents past its quota, sent by the host itself: an honest host never
   * does this (it refuses to start with more agents than the network allows), so a few a second
   * already count, like garbage frames.
   */
  'over-quota': 2
}

/** Refused requests within ABUSE_WINDOW_S that make a peer abusive: ten times its budget for a second. */
const ABUSE_FACTOR = 10
const ABUSE_WINDOW_S = 10

export interface PeerLimitsInit {
  rates?: Partial<Record<RequestKind, number>>
  /** A peer far over its budget: hang up on it and refuse it. */
  onAbuse?: (peer: string, reason: string) => void
}

export class PeerLimits {
  readonly #rates: Record<RequestKind, number>
  readonly #allowed = new Map<RequestKind, RateLimiter>()
  readonly #refused = new Map<RequestKind, RateLimiter>()
  readonly #abusive = new Set<string>()
  onAbuse: ((peer: string, reason: string) => void) | undefined

  constructor (init: PeerLimitsInit = {}) {
    this.#rates = { ...DEFAULT_RATES, ...init.rates }
    this.onAbuse = init.onAbuse
    for (const [kind, rate] of Object.entries(this.#rates) as Array<[RequestKind, number]>) {
      this.#allowed.set(kind, new RateLimiter({ points: rate, duration: 1, keyPrefix: kind }))
      this.#refused.set(kind, new RateLimiter({ points: rate * ABUSE_FACTOR, duration: ABUSE_WINDOW_S, keyPrefix: `${kind}-refused` }))
    }
  }

  rate (kind: RequestKind): number { return this.#rates[kind] }

  /** True if `peer` may make one more `kind` request now; false (and counted) if it is over budget. */
  allow (peer: string, kind: RequestKind): boolean {
    try {
      this.#allowed.get(kind)!.consume(peer)
      return true
    } catch {
      try {
        this.#refused.get(kind)!.consume(peer)
      } catch {
        // Reported once per abuse window: the caller hangs up, and the guard refuses redials.
        if (!this.#abusive.has(peer)) {
          this.#abusive.add(peer)
          setTimeout(() => this.#abusive.delete(peer), ABUSE_WINDOW_S * 1000).unref()
          this.onAbuse?.(peer, `more than ${ABUSE_FACTOR}× its budget of ${this.#rates[kind]} ${kind} requests per second`)
        }
      }
      return false
    }
  }
}
