/**
 * A peer's control API: HTTP on 127.0.0.1 only (it is for the local user, not the mesh).
 * GET /agents — every VCV the peer knows; GET /status — identity, addresses, counts.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { PeerStartError, type Peer } from './peer.ts'
import { vcvJson } from './present.ts'

export async function startApi (peer: Peer, port: number): Promise<{ port: number, close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    if (req.method !== 'GET') return reply(405, { error: `${req.method} is not supported; use GET` })
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname
    if (path === '/agents') return reply(200, peer.capability.agents().map(vcvJson))
    if (path === '/status') {
      return reply(200, {
        peerId: peer.peerId,
        multiaddrs: peer.multiaddrs(),
        connections: peer.libp2p.getConnections().length,
        agents: peer.capability.agents().length,
        localAgents: [...peer.agents.keys()],
        flaggedHosts: peer.capability.flaggedHosts()
      })
    }
    reply(404, { error: `no route ${path}; try /agents or /status` })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve() })
  }).catch((err: NodeJS.ErrnoException) => {
    // A user mistake (exit 2 with this message), not a crash with a stack trace.
    throw err.code === 'EADDRINUSE'
      ? new PeerStartError(`API port ${port} is already in use — choose another with --api-port`)
      : new Error(`cannot start the API on 127.0.0.1:${port}: ${err.message}`)
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => { await new Promise<void>(resolve => server.close(() => resolve())); server.closeAllConnections() }
  }
}
