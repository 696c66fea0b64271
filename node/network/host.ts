/**
 * The libp2p host's parts for one network: transports, DHT, relay, AutoNAT and WebRTC, chosen by
 * the network and the peer's role. The agentmesh services are added by the caller (peer.ts).
 *
 * - local: TCP on loopback, every peer a DHT server (so a peer can find any other by id).
 * - any other network: also WebSockets, circuit relay (a reservation when not public), WebRTC for
 *   the direct path through NAT (DCUtR over TCP cannot work in Node), AutoNAT for the verdict.
 *   A public node also serves the DHT and relays for others.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { autoNAT } from '@libp2p/autonat'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify, identifyPush } from '@libp2p/identify'
import { kadDHT } from '@libp2p/kad-dht'
import { peerInfoMapper } from './addresses.ts'
import { preSharedKey } from '@libp2p/pnet'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import type { Libp2pOptions } from 'libp2p'
import { networkIds, pnetKeyFile } from '../../protocols/network/index.ts'
import { isLocal, type NetworkSettings } from './settings.ts'
import type { NetworkGuard } from './guard.ts'

/**
 * Relay limits sized for agent traffic: a relayed connection carries results up to 1 MiB, gossip
 * and consensus until the pair upgrades to WebRTC. The package default (128 KiB / 2 min) would cut
 * it mid-task.
 */
export const RELAY_LIMITS = { dataBytes: 64n * 1024n * 1024n, durationMs: 15 * 60_000, reservations: 256 }

export function hostOptions (s: NetworkSettings, listen: string[], guard: NetworkGuard): Pick<Libp2pOptions, 'addresses' | 'transports' | 'connectionEncrypters' | 'streamMuxers' | 'connectionProtector' | 'connectionManager' | 'connectionGater' | 'connectionMonitor'> & { services: Record<string, unknown> } {
  const ids = networkIds(s.network.name)
  const local = isLocal(s)
  const iceServers = s.network.stun.length > 0 ? [{ urls: s.network.stun }] : []
  // pnet protects raw byte streams; WebRTC brings its own encryption and would bypass the key.
  const webrtc = !local && s.network.psk === undefined && s.holePunching !== false
  const transports: NonNullable<Libp2pOptions['transports']> = [tcp()]
  if (!local) transports.push(webSockets(), circuitRelayTransport({ reservationCompletionTimeout: 20_000 }))
  if (webrtc) transports.push(webRTC({ rtcConfiguration: { iceServers } }))
  const listenAll = [...listen]
  if (!local && !s.public) {
    // Behind NAT: take a relay reservation and accept WebRTC through it.
    if (!listenAll.includes('/p2p-circuit')) listenAll.push('/p2p-circuit')
    if (webrtc && !listenAll.includes('/webrtc')) listenAll.push('/webrtc')
  }
  const services: Record<string, unknown> = {
    identify: identify({ runOnLimitedConnection: true }),
    // Tells connected peers when our addresses change, e.g. a relay reservation arrives: the DHT
    // servers then hand out the relay address to peers looking us up, not only our LAN address.
    identifyPush: identifyPush({ runOnLimitedConnection: true }),
    ping: ping({ runOnLimitedConnection: true }),
    dht: kadDHT({
      protocol: ids.kadProtocol,
      // A public or loopback node serves the DHT; others decide from AutoNAT's verdict.
      ...(local || s.public ? { clientMode: false } : {}),
      // On loopback a peer learns the others from its dials and asks its neighbours for the rest.
      // By default the first self-query waits for the first peer and then looks for the 20
      // closest: in a 50-peer local mesh every peer did so at the moment of dialling, a storm
      // that starved the mesh forming around it (up --peers 50: 19-22 s to converge, 14 s
      // without). Here it runs at start on the empty table (finding nobody, so later lookups
      // need not wait for it) and then every 10 minutes.
      ...(local ? { allowQueryWithZeroPeers: true, initialQuerySelfInterval: 0, querySelfInterval: 600_000 } : {}),
      peerInfoMapper: peerInfoMapper(s.network)
    })
  }
  if (!local) services.autonat = autoNAT()
  if (s.public) {
    services.relay = circuitRelayServer({
      reservations: {
        maxReservations: RELAY_LIMITS.reservations,
        defaultDataLimit: RELAY_LIMITS.dataBytes,
        defaultDurationLimit: RELAY_LIMITS.durationMs
      }
    })
  }
  return {
    addresses: { listen: listenAll, ...(s.announce.length > 0 ? { announce: s.announce } : {}) },
    transports,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    ...(s.network.psk !== undefined ? { connectionProtector: preSharedKey({ psk: pnetKeyFile(s.network.psk) }) } : {}),
    connectionManager: local
      // Local swarms dial each other in bursts from one host: the defaults (5/s, 10 pending) reset them.
      ? { inboundConnectionThreshold: 1000, maxIncomingPendingConnections: 256 }
      : { maxConnections: 300, maxIncomingPendingConnections: 64, inboundConnectionThreshold: 20 },
    connectionGater: guard.gater(),
    // libp2p pings every link each 10 s and aborts it when an answer takes over 5 s: on a loaded
    // machine running a whole local mesh, starved event loops miss that and the mesh falls apart
    // (20 peers on 2 cores dropped to 0-5 links each ~30 s in). On loopback a dead peer's socket
    // closes, so the ping only measures RTT there.
    ...(local ? { connectionMonitor: { abortConnectionOnPingFailure: false } } : {}),
    services
  }
}
