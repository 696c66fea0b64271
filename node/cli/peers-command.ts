/** `agentmesh peers`: a running peer's connections and its place in the network, from its API. */
import { table } from '../api/present.ts'
import type { ConnectionView, NetworkStatus } from '../network/status.ts'
import { parse, UsageError } from './args.ts'
import { apiTarget } from './api-client.ts'
import { API_PORT_OFFSET, DEFAULT_PORT } from './shared.ts'

export const peersHelp = `agentmesh peers [--api-port P] [--data DIR] [--json]

Shows a running peer's connections: each peer with the kind of connection (tcp, websocket, webrtc,
relayed), its round-trip time and its gossip score; then the peer's network, reachability,
addresses, relay reservations and DHT routing table size. Default: the peer whose API is on
127.0.0.1:${DEFAULT_PORT + API_PORT_OFFSET}; --data DIR: the peer whose data directory is DIR.`

export async function peersCommand (argv: string[]): Promise<number> {
  const { values } = parse('peers', argv, { 'api-port': { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' } })
  const api = await apiTarget('peers', { apiPort: values['api-port'], data: values.data })
  const get = async <T>(path: string): Promise<T> => {
    const url = `${api.base}${path}`
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000), headers: api.headers })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      return await res.json() as T
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message
      throw new UsageError(`peers: no agentmesh peer answered at ${url} (${cause ?? (err as Error).message}) — start one with \`agentmesh node\` or \`agentmesh join\`, or point at it with --api-port`)
    }
  }
  const [peers, status] = await Promise.all([get<ConnectionView[]>('/peers'), get<NetworkStatus & { peerId: string }>('/status')])
  if (values.json === true) {
    console.log(JSON.stringify({ peers, status }, null, 2))
    return 0
  }
  const rows = [...peers].sort((a, b) => a.kind.localeCompare(b.kind) || a.peerId.localeCompare(b.peerId)).map(p => [
    p.peerId, p.kind, p.direction, p.rttMs === null ? '-' : `${p.rttMs} ms`, p.gossipScore === null ? '-' : String(p.gossipScore), p.addr
  ])
  console.log(`${peers.length} connections of ${status.peerId} (network ${status.network})`)
  if (rows.length > 0) console.log(table(['peer', 'kind', 'dir', 'rtt', 'gossip score', 'address'], rows))
  console.log(`reachability  ${status.reachability.text}`)
  for (const a of status.addresses) console.log(`address       ${a}`)
  if (status.relayReservations.length > 0) console.log(`relays        ${status.relayReservations.join(', ')}`)
  if (status.dht !== null) console.log(`dht           ${status.dht.mode} mode, ${status.dht.routingTable} peers in the routing table`)
  return 0
}
