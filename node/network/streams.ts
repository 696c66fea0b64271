/**
 * Opens a protocol stream to a peer on the best connection it already has: a direct one, else a
 * relayed one (libp2p's own openStream dials again whenever the only connection is relayed,
 * which for a peer behind NAT means a second circuit that the relay may refuse). With no
 * connection at all it dials: the DHT finds the peer's addresses, relayed ones included.
 */
import type { PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

export async function openStreamTo (cm: ConnectionManager, peer: PeerId, protocol: string, signal?: AbortSignal): Promise<Stream> {
  const open = cm.getConnections(peer).filter(c => c.status === 'open')
  const best = open.find(c => c.limits === undefined) ?? open[0]
  const options = { runOnLimitedConnection: true, ...(signal !== undefined ? { signal } : {}) }
  if (best !== undefined) return await best.newStream(protocol, options)
  return await cm.openStream(peer, protocol, options)
}
