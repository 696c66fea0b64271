/**
 * What a peer needs to know about the network it joins, beyond its own agents: the network
 * (name, bootstrap, STUN, key) and its own role in it (public node or not, announced addresses).
 */
import { LOCAL_NETWORK, type NetworkSpec } from '../../protocols/network/index.ts'

export interface NetworkSettings {
  network: NetworkSpec
  /** A public node: DHT server, circuit relay server, bootstrap for others. */
  public: boolean
  /** Addresses others should dial (a public node behind a port forward, or in the lab). */
  announce: string[]
  /** false: no WebRTC, so relayed connections stay relayed (for networks that block UDP). Default true. */
  holePunching?: boolean
}

export const LOCAL: NetworkSpec = { name: LOCAL_NETWORK, bootstrap: [], stun: [], privateAddresses: true }

export function localSettings (): NetworkSettings {
  return { network: LOCAL, public: false, announce: [] }
}

/** The local network runs on loopback only: no relays, no NAT checks, no WebRTC. */
export function isLocal (s: NetworkSettings): boolean {
  return s.network.name === LOCAL_NETWORK
}
