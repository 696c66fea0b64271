/**
 * Which of a peer's addresses the DHT keeps and hands out. On the internet: public ones only
 * (kad-dht's default). A network with `publicRanges` (the lab, a campus) also keeps addresses in
 * those ranges; a home LAN's 192.168.x.y behind a NAT is still dropped, so nobody outside waits
 * on a dial that cannot work. `privateAddresses: true` (one LAN, the local network) keeps all.
 */
import type { PeerInfo } from '@libp2p/interface'
import { passthroughMapper, removePrivateAddressesMapper } from '@libp2p/kad-dht'
import { isPrivateIp } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'
import { inRange, parseCidr, type IpRange, type NetworkSpec } from '../../protocols/network/index.ts'

export function peerInfoMapper (spec: NetworkSpec): (info: PeerInfo) => PeerInfo {
  if (spec.privateAddresses) return passthroughMapper
  const ranges = (spec.publicRanges ?? []).map(parseCidr).filter((r): r is IpRange => r !== undefined)
  if (ranges.length === 0) return removePrivateAddressesMapper
  return info => ({ ...info, multiaddrs: info.multiaddrs.filter(ma => dialableIn(ma, ranges)) })
}

/** A relay address counts by its relay's IP (the first component), which is what gets dialled. */
export function dialableIn (ma: Multiaddr, ranges: readonly IpRange[]): boolean {
  const m = /^\/(ip4|ip6)\/([^/]+)/.exec(ma.toString())
  if (m === null) return true // dns names: resolved by the dialler
  const ip = m[2]!
  if (ranges.some(r => inRange(ip, r))) return true
  return isPrivateIp(ip) !== true && !/^(127\.|0\.)/.test(ip) && ip !== '::1'
}
