/** What `agentmesh peers`, `GET /peers` and `GET /status` show about the network. */
import type { Connection, Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { describeReachability, reachability, type Reachability } from '../../protocols/network/index.ts'
import { gossipScore, SCORE_THRESHOLDS } from './gossip.ts'
import type { NetworkSettings } from './settings.ts'

export type ConnectionKind = 'tcp' | 'websocket' | 'webrtc' | 'relayed' | 'other'

export interface ConnectionView {
  peerId: string
  kind: ConnectionKind
  direction: 'inbound' | 'outbound'
  addr: string
  /** Round trip measured by the connection monitor (ms), once it has pinged. */
  rttMs: number | null
  /** This peer's gossipsub score of the remote peer. */
  gossipScore: number | null
  /** Below the gossip graylist threshold: its gossip is ignored (and agentmesh hangs up on it). */
  graylisted: boolean
  openedAt: number
}

export function connectionKind (c: Connection): ConnectionKind {
  const p = protocolNames(c.remoteAddr.toString())
  // A hole-punched WebRTC connection's dialler sees `<relay>/p2p-circuit/webrtc/p2p/<peer>`: the relay
  // only carried the SDP offer, the data flows directly (and without the relay's limits).
  if ((p.has('webrtc') || p.has('webrtc-direct')) && c.limits === undefined) return 'webrtc'
  if (p.has('p2p-circuit') || c.limits !== undefined) return 'relayed'
  if (p.has('ws') || p.has('wss')) return 'websocket'
  if (p.has('tcp')) return 'tcp'
  return 'other'
}

/**
 * The protocol names of a multiaddr, not its values: a host name such as `/dns4/ws.example.org` or
 * `/dns4/webrtc.example.org` says nothing about the transport.
 */
function protocolNames (addr: string): Set<string> {
  try {
    return new Set(multiaddr(addr).getComponents().map(c => c.name))
  } catch {
    return new Set()
  }
}

export function connectionsView (libp2p: Libp2p<{ pubsub: unknown }>): ConnectionView[] {
  const pubsub = libp2p.services.pubsub
  return libp2p.getConnections().filter(c => c.status === 'open').map(c => {
    const peer = c.remotePeer.toString()
    const score = gossipScore(pubsub, peer)
    return {
      peerId: peer,
      kind: connectionKind(c),
      direction: c.direction,
      addr: c.remoteAddr.toString(),
      rttMs: typeof c.rtt === 'number' && Number.isFinite(c.rtt) ? Math.round(c.rtt * 10) / 10 : null,
      gossipScore: score === undefined ? null : Math.round(score * 100) / 100,
      graylisted: score !== undefined && score < SCORE_THRESHOLDS.graylistThreshold,
      openedAt: c.timeline.open
    }
  })
}

export interface NetworkStatus {
  network: string
  public: boolean
  reachability: Reachability & { text: string }
  addresses: string[]
  relayReservations: string[]
  dht: { mode: string, routingTable: number } | null
  connections: Record<ConnectionKind, number>
}

interface Dht { getMode?: () => string, routingTable?: { size: number } }

export function networkStatus (libp2p: Libp2p<{ dht?: unknown }>, settings: NetworkSettings): NetworkStatus {
  const addresses = libp2p.getMultiaddrs().map(String)
  const relays = [...new Set(addresses.filter(a => a.includes('/p2p-circuit')).map(a => /\/p2p\/([^/]+)\/p2p-circuit/.exec(a)?.[1]).filter((r): r is string => r !== undefined))]
  const direct = addresses.filter(a => !a.includes('/p2p-circuit') && !a.includes('/webrtc') && !/\/ip4\/127\.|\/ip6\/::1\//.test(a))
  // Past start-up libp2p lists a public address only once AutoNAT has confirmed it (or it is announced).
  const publicDirect = direct.filter(a => hasPublicIp([a]))
  const confirmed = !settings.public && publicDirect.length > 0
  const webrtcPeers = [...new Set(libp2p.getConnections().filter(c => connectionKind(c) === 'webrtc').map(c => c.remotePeer.toString()))]
  const verdict = reachability({ public: settings.public, directAddrs: settings.public ? (settings.announce.length > 0 ? settings.announce : addresses.filter(a => !a.includes('/p2p-circuit'))) : publicDirect, confirmed, relays, holePunched: webrtcPeers })
  const dht = libp2p.services.dht as Dht | undefined
  const counts: Record<ConnectionKind, number> = { tcp: 0, websocket: 0, webrtc: 0, relayed: 0, other: 0 }
  for (const c of libp2p.getConnections()) if (c.status === 'open') counts[connectionKind(c)]++
  return {
    network: settings.network.name,
    public: settings.public,
    reachability: { ...verdict, text: describeReachability(verdict) },
    addresses,
    relayReservations: relays,
    dht: dht === undefined ? null : { mode: dht.getMode?.() ?? 'unknown', routingTable: dht.routingTable?.size ?? 0 },
    connections: counts
  }
}

/** A public (internet-routable) IPv4 or IPv6 address in the multiaddr. */
function hasPublicIp (addrs: string[]): boolean {
  return addrs.some(a => {
    const v4 = /^\/ip4\/(\d+)\.(\d+)\./.exec(a)
    if (v4 !== null) {
      const [x, y] = [Number(v4[1]), Number(v4[2])]
      return !(x === 10 || x === 127 || x === 0 || (x === 172 && y >= 16 && y < 32) || (x === 192 && y === 168) || (x === 100 && y >= 64 && y < 128) || (x === 169 && y === 254))
    }
    return /^\/ip6\/[23]/.test(a)
  })
}
