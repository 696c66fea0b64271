/**
 * What a joining peer shows as it goes: identified peers (and peers refused for another network),
 * DHT ready, gossip joined, peers and agents known, and the reachability verdict each time it
 * changes. Event-driven where libp2p has events; the verdict is re-read every 2 s.
 */
import type { Peer } from '../peer.ts'
import { networkStatus } from '../network/status.ts'

/** One event for the log: its name, its fields and (for people) a line of text. */
export type Say = (event: string, detail: Record<string, unknown>, text?: string) => void

interface Dht { routingTable?: { size: number }, getMode?: () => string }
interface Mesh { getMeshPeers?: (topic: string) => string[] }

export function watchProgress (peer: Peer, say: Say, intervalMs = 2000): () => void {
  const libp2p = peer.libp2p
  const onIdentify = (e: CustomEvent<{ peerId: { toString: () => string }, agentVersion?: string }>): void => {
    const id = e.detail.peerId.toString()
    if (peer.guard.refusal(id) !== undefined) return
    say('identified', { peer: id }, `identified ${id}`)
  }
  libp2p.addEventListener('peer:identify', onIdentify as never)
  const upgrades = peer.upgrades
  const previousUpgrade = upgrades?.onEvent
  if (upgrades !== undefined) {
    upgrades.onEvent = u => {
      previousUpgrade?.(u)
      say('upgrade', { ...u }, u.ok ? `direct WebRTC connection to ${u.peer} (hole punched in ${u.ms} ms)` : `no direct connection to ${u.peer} yet (${u.error ?? 'failed'}); staying on the relay`)
    }
  }

  let dhtReady = false
  let gossipJoined = false
  let counts = ''
  let verdict = ''
  const check = (): void => {
    const dht = libp2p.services.dht as Dht | undefined
    const table = dht?.routingTable?.size ?? 0
    if (!dhtReady && table > 0) {
      dhtReady = true
      say('dht-ready', { mode: dht?.getMode?.() ?? 'unknown', routingTable: table }, `DHT ready (${dht?.getMode?.() ?? '?'} mode, ${table} peer${table === 1 ? '' : 's'} in the routing table)`)
    }
    const mesh = (libp2p.services.pubsub as Mesh).getMeshPeers?.(peer.capability.topic) ?? []
    const subscribers = libp2p.services.pubsub.getSubscribers(peer.capability.topic).length
    if (!gossipJoined && (mesh.length > 0 || subscribers > 0)) {
      gossipJoined = true
      say('gossip-joined', { meshPeers: mesh.length, subscribers }, `gossip joined (${subscribers} peer${subscribers === 1 ? '' : 's'} on the capability topic)`)
    }
    const agents = peer.capability.agents()
    const hosts = new Set(agents.map(v => v.body.agent.split('/')[0])).size
    const now = `${hosts}/${agents.length}`
    if (now !== counts) {
      counts = now
      say('known', { peers: hosts, agents: agents.length, connections: libp2p.getConnections().length }, `${hosts} peer${hosts === 1 ? '' : 's'} / ${agents.length} agents known (${libp2p.getConnections().length} connections)`)
    }
    const status = networkStatus(libp2p, peer.network)
    if (status.reachability.text !== verdict) {
      verdict = status.reachability.text
      say('reachability', { reachability: status.reachability, relayReservations: status.relayReservations, addresses: status.addresses }, `reachability: ${verdict}`)
    }
  }
  const timer = setInterval(check, intervalMs)
  const events = ['agent:added', 'agent:removed'] as const
  let queued: NodeJS.Timeout | undefined
  const soon = (): void => { queued ??= setTimeout(() => { queued = undefined; check() }, 200) }
  for (const e of events) peer.capability.addEventListener(e, soon)
  libp2p.addEventListener('self:peer:update', soon)
  check()
  return () => {
    clearInterval(timer)
    clearTimeout(queued)
    for (const e of events) peer.capability.removeEventListener(e, soon)
    libp2p.removeEventListener('self:peer:update', soon)
    libp2p.removeEventListener('peer:identify', onIdentify as never)
    if (upgrades !== undefined) upgrades.onEvent = previousUpgrade
  }
}
