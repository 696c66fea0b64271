/**
 * The reachability verdict a joining peer prints: can others dial it, and how.
 */
export interface ReachabilityFacts {
  /** Started with --public: it announces addresses others dial. */
  public: boolean
  /** Its own non-relay addresses that someone confirmed dialable (AutoNAT), or that it announces. */
  directAddrs: string[]
  /** Whether `directAddrs` were confirmed by AutoNAT rather than only announced. */
  confirmed: boolean
  /** Relays holding a reservation for it (peer ids). */
  relays: string[]
  /** Peers it reaches over a direct WebRTC connection (hole punched). */
  holePunched: string[]
}

export type Reachability =
  | { kind: 'public', addrs: string[], confirmed: boolean }
  | { kind: 'relayed', relays: string[], holePunched: number }
  | { kind: 'unreachable' }

export function reachability (f: ReachabilityFacts): Reachability {
  if (f.directAddrs.length > 0 && (f.public || f.confirmed)) return { kind: 'public', addrs: f.directAddrs, confirmed: f.confirmed }
  if (f.relays.length > 0) return { kind: 'relayed', relays: f.relays, holePunched: f.holePunched.length }
  return { kind: 'unreachable' }
}

export function describeReachability (r: Reachability): string {
  if (r.kind === 'public') return `publicly reachable at ${r.addrs.join(', ')}${r.confirmed ? ' (confirmed by AutoNAT)' : ' (announced)'}`
  if (r.kind === 'relayed') {
    return `reachable through relay ${r.relays.join(', ')}` +
      (r.holePunched > 0 ? `; direct connections established by hole punching with ${r.holePunched} peer${r.holePunched === 1 ? '' : 's'}` : '')
  }
  return 'not reachable by others yet: no public address and no relay reservation (others cannot dial this peer; it can still dial out)'
}
