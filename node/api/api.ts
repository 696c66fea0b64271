/**
 * A peer's control API: HTTP on 127.0.0.1 only (it is for the local user, not the mesh).
 *
 * GET  /agents       every VCV the peer knows
 * GET  /peers        connections: peer, kind (tcp, websocket, webrtc, relayed), RTT, gossip score
 * GET  /status       identity, network, reachability, addresses, relay reservations, DHT, counts
 * POST /tasks        submit a task (JSON or YAML body); `?wait=1` answers with its report when done
 * GET  /tasks/<id>   a task's status, and its result and trace once finished
 * POST /run          `{ text, skills?, input?, deadlineMs? }`: a one-subtask task, answered when done
 * POST /feedback     `{ agent, good, id? }`: the user's verdict on an agent's answer (reputation, accuracy)
 * GET  /reputation   this peer's reputation book: `?agent=<id>` for one agent's standing and counts
 * GET  /certificates          instance ids of the certificates this peer holds, oldest first
 * GET  /certificates/<id>     one certificate, as the JSON `agentmesh verify` reads
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parse as parseYaml } from 'yaml'
import { hnswlibBuild } from '../../capability-index/index.ts'
import { TaskSpecError } from '../../protocols/task/index.ts'
import { certificateToJson, decodeCertificate } from '../../protocols/consensus/index.ts'
import { PeerStartError, type Peer } from '../peer.ts'
import { vcvJson } from './present.ts'
import { connectionsView, networkStatus } from '../network/status.ts'

const MAX_BODY_BYTES = 1024 * 1024

class HttpError extends Error {
  readonly status: number
  constructor (status: number, message: string) { super(message); this.status = status }
}

export async function startApi (peer: Peer, port: number): Promise<{ port: number, close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      if (res.headersSent) return
      // After refusing a body we did not read, close the connection rather than drain it.
      const close = status === 413
      res.writeHead(status, { 'content-type': 'application/json', ...(close ? { connection: 'close' } : {}) })
      res.end(JSON.stringify(body), () => { if (close) req.socket?.destroy() })
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    const path = url.pathname
    if (req.method === 'POST' && path === '/feedback') {
      void readBody(req).then(text => {
        let o: Record<string, unknown>
        try {
          o = JSON.parse(text) as Record<string, unknown>
        } catch {
          return reply(400, { error: 'the body must be JSON: {"agent": "<host>/<name>", "good": true|false, "id"?: "<unique id>"}' })
        }
        if (typeof o !== 'object' || o === null) return reply(400, { error: 'the body must be a JSON object with agent and good' })
        const extra = Object.keys(o).find(k => !['agent', 'good', 'id'].includes(k))
        if (extra !== undefined) return reply(400, { error: `/feedback takes agent, good and id, not "${extra}"` })
        if (typeof o.agent !== 'string' || !/^12D3KooW\w+\/[a-z0-9][a-z0-9._-]*$/.test(o.agent)) return reply(400, { error: 'agent must be a full agent id, <host peer id>/<name> (see GET /agents)' })
        if (typeof o.good !== 'boolean') return reply(400, { error: 'good must be true or false' })
        if (o.id !== undefined && (typeof o.id !== 'string' || o.id.length === 0 || o.id.length > 200)) return reply(400, { error: 'id must be a string of 1..200 characters (it makes a repeated report count once)' })
        const book = peer.consensus.book
        const fresh = book.feedback({ id: typeof o.id === 'string' ? o.id : randomUUID(), agent: o.agent, good: o.good })
        peer.consensus.bookChanged()
        reply(200, { counted: fresh, agent: o.agent, ...book.standing(o.agent) })
      }, (err: Error) => reply(err instanceof HttpError ? err.status : 500, { error: err.message }))
      return
    }
    if (req.method === 'POST' && (path === '/tasks' || path === '/run')) {
      void handlePost(peer, req, path, url.searchParams.get('wait') === '1').then(
        ({ status, body }) => reply(status, body),
        (err: Error) => reply(err instanceof HttpError ? err.status : err instanceof TaskSpecError ? 400 : 500, { error: err.message }))
      return
    }
    if (req.method !== 'GET') return reply(405, { error: `${req.method} ${path} is not supported; see the API list in README` })
    if (path.startsWith('/tasks/')) {
      const view = peer.tasks.get(decodeURIComponent(path.slice('/tasks/'.length)))
      return view === undefined ? reply(404, { error: `no task ${path.slice(7)} on this peer` }) : reply(200, view)
    }
    if (path === '/certificates') return reply(200, peer.consensus.certificateIds())
    if (path.startsWith('/certificates/')) {
      const id = decodeURIComponent(path.slice('/certificates/'.length))
      const bytes = peer.consensus.certificate(id)
      return bytes === undefined
        ? reply(404, { error: `no certificate for instance ${id} on this peer; GET /certificates lists them` })
        : reply(200, certificateToJson(decodeCertificate(bytes)))
    }
    if (path === '/reputation') {
      const agent = url.searchParams.get('agent')
      const book = peer.consensus.book
      return reply(200, agent === null ? book.toJSON() : { agent, ...book.standing(agent), counts: book.counts(agent) })
    }
    if (path === '/peers') return reply(200, connectionsView(peer.libp2p))
    if (path === '/agents') return reply(200, peer.capability.agents().map(vcvJson))
    if (path === '/status') {
      return reply(200, {
        peerId: peer.peerId,
        multiaddrs: peer.multiaddrs(),
        ...networkStatus(peer.libp2p, peer.network),
        knownPeers: new Set(peer.capability.agents().map(v => v.body.agent.split('/')[0])).size,
        agents: peer.capability.agents().length,
        localAgents: [...peer.agents.keys()],
        flaggedHosts: peer.capability.flaggedHosts(),
        index: { size: peer.index.size, searches: peer.index.plans(), hnswlib: hnswlibBuild }
      })
    }
    reply(404, { error: `no route ${path}; try /agents, /peers, /status, /tasks, /reputation, /certificates` })
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

async function handlePost (peer: Peer, req: IncomingMessage, path: string, wait: boolean): Promise<{ status: number, body: unknown }> {
  const text = await readBody(req)
  let value: unknown
  try {
    value = (req.headers['content-type'] ?? '').includes('json') ? JSON.parse(text) : parseYaml(text)
  } catch (err) {
    throw new HttpError(400, `the body is not valid JSON or YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  if (path === '/run') {
    const o = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>
    const extra = Object.keys(o).filter(k => !['text', 'skills', 'input', 'deadlineMs'].includes(k))
    if (extra.length > 0) throw new HttpError(400, `/run takes text, skills, input and deadlineMs, not "${extra[0]}"`)
    value = { subtasks: [{ id: 'run', capability: { ...(o.text !== undefined ? { text: o.text } : {}), ...(o.skills !== undefined ? { skills: o.skills } : {}) }, input: o.input ?? null, ...(o.deadlineMs !== undefined ? { deadlineMs: o.deadlineMs } : {}) }] }
    wait = true
  }
  const run = peer.tasks.submit(value)
  if (!wait) return { status: 202, body: { id: run.id, status: 'running' } }
  return { status: 200, body: await run.finished }
}

async function readBody (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).byteLength
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the body exceeds ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
