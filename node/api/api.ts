/**
 * A peer's control API: HTTP on 127.0.0.1 (it is for the local user, not the mesh), or HTTPS on
 * another address with --api-listen. Every web page the user opens can reach 127.0.0.1, so every
 * request is treated as hostile: see guard.ts for who may call, and the limits below for how much.
 *
 * GET  /agents       every VCV the peer knows
 * GET  /peers        connections: peer, kind (tcp, websocket, webrtc, relayed), RTT, gossip score
 * GET  /status       identity, network, reachability, addresses, relay reservations, DHT, counts
 * POST /tasks        submit a task (JSON or YAML body); `?wait=1` answers with its report when done
 * GET  /tasks/<id>   a task's status, and its result and trace once finished
 * POST /run          `{ text, skills?, input?, deadlineMs? }`: a one-subtask task, answered when done
 * POST /feedback     `{ agent, good, id? }`: the user's verdict on an agent's answer (reputation, accuracy)
 * GET  /reputation   this peer's reputation book and the agents its canaries suspended: `?agent=<id>` for one agent's standing, counts and suspension
 * GET  /certificates          instance ids of the certificates this peer holds, oldest first
 * GET  /certificates/<id>     one certificate, as the JSON `agentmesh verify` reads
 * GET  /metrics, /health, /ready   Prometheus metrics, liveness, readiness (ops-routes.ts)
 * GET  /ui, /events, /route        the dashboard, its live Server-Sent Events, what routing would pick (ui-routes.ts)
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { parse as parseYaml } from 'yaml'
import { hnswlibBuild } from '../../capability-index/index.ts'
import { TaskSpecError } from '../../protocols/task/index.ts'
import { certificateToJson, decodeCertificate } from '../../protocols/consensus/index.ts'
import type { BridgeStats } from '../services/mqtt-bridge.ts'
import { PeerStartError, type Peer } from '../peer.ts'
import { vcvJson } from './present.ts'
import { connectionsView, networkStatus } from '../network/status.ts'
import { removeApiFile, writeApiFile } from './api-file.ts'
import { checkSource, checkToken, type GuardContext } from './guard.ts'
import { isLoopback } from './listen.ts'
import { MAX_YAML_BYTES } from './limits.ts'
import { loadOrCreateToken } from './token.ts'
import { opsRoutes } from './ops-routes.ts'
import { uiRoutes } from './ui-routes.ts'

/** How long and how much a client may take. Only receiving the request is timed: a `?wait=1` POST may then wait for its task. */
export interface ApiLimits {
  /** From connecting to the end of the headers (also cuts connections that send nothing). */
  headersTimeoutMs: number
  /** From connecting to the end of the body; node stops counting once the request is in. */
  requestTimeoutMs: number
  /** An idle kept-alive connection is closed after this. */
  keepAliveTimeoutMs: number
  /** Connections beyond this are closed at once. */
  maxConnections: number
  maxHeaderBytes: number
  maxBodyBytes: number
  /** The longest request target (path and query). */
  maxTargetChars: number
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 256,
  maxHeaderBytes: 8 * 1024,
  maxBodyBytes: 1024 * 1024,
  maxTargetChars: 2048
}

export interface ApiOptions {
  /** 0 picks a free port. */
  port: number
  /** Default 127.0.0.1; anything but loopback needs `tls`, and then the token on every route. */
  host?: string
  /** PEM certificate and key: HTTPS. */
  tls?: { cert: string, key: string }
  /** Origins (`https://app.example.org`) whose pages may call the API (CORS). */
  allowOrigins?: string[]
  /** Where the token and api.json live (default: the peer's data directory). */
  dataDir?: string
  limits?: Partial<ApiLimits>
}

export interface Api {
  port: number
  url: string
  /** The bearer token and the file it is in. */
  token: string
  tokenPath: string
  /**
   * Stops taking work (a graceful stop's first step): no new connections, idle keep-alive ones
   * closed, and any further request on an open one answered 503 and closed. Requests already
   * running (a `?wait=1` task) still get their answer.
   */
  drain: () => void
  close: () => Promise<void>
}

/**
 * A route that writes its own answer: true when it took the request (it has answered or is
 * streaming), false to let the next route look. Source and token checks have already passed.
 */
export type RawRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>

export class HttpError extends Error {
  readonly status: number
  constructor (status: number, message: string) { super(message); this.status = status }
}

export async function startApi (peer: Peer, portOrOptions: number | ApiOptions, bridge?: { stats: () => BridgeStats, prefix: string }): Promise<Api> {
  const options: ApiOptions = typeof portOrOptions === 'number' ? { port: portOrOptions } : portOrOptions
  const limits: ApiLimits = { ...DEFAULT_API_LIMITS, ...options.limits }
  const host = options.host ?? '127.0.0.1'
  const loopback = isLoopback(host)
  if (!loopback && options.tls === undefined) throw new PeerStartError(`the API would listen on ${host}, beyond this machine, in clear text — give --api-tls-cert FILE and --api-tls-key FILE, or listen on 127.0.0.1`)
  const dataDir = options.dataDir ?? peer.dataDir
  const { token, path: tokenPath } = await loadOrCreateToken(dataDir)
  const scheme = options.tls !== undefined ? 'https' : 'http'
  let port = options.port
  const ctx: GuardContext = {
    scheme,
    port: () => port,
    host,
    loopback,
    token,
    // A remote caller need not learn the layout of this machine.
    tokenHint: loopback ? tokenPath : 'the api-token file of the peer\'s data directory',
    allowOrigins: new Set(options.allowOrigins ?? [])
  }

  const serverOptions: ServerOptions = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node checks the two timeouts above only this often (default 30 s).
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4))),
    maxHeaderSize: limits.maxHeaderBytes,
    requireHostHeader: true
  }
  let draining = false
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    let cors: Record<string, string> = {}
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}): void => { send(req, res, status, body, { ...cors, ...headers }) }
    const handle = async (): Promise<void> => {
      if (draining) return reply(503, { error: 'this peer is stopping: it takes no new requests' }, { connection: 'close' })
      const url = requestTarget(req.url, limits.maxTargetChars)
      const path = url.pathname
      const source = checkSource(req, ctx)
      if (!source.ok) return reply(source.status, { error: source.error }, source.headers)
      if (source.cors !== undefined) cors = { 'access-control-allow-origin': source.cors, vary: 'Origin' }
      if (req.method === 'OPTIONS') {
        if (source.cors === undefined) return reply(405, { error: 'OPTIONS answers browser preflights from an --api-allow-origin origin only' })
        return reply(204, undefined, {
          'access-control-allow-methods': 'GET, POST',
          'access-control-allow-headers': 'authorization, content-type',
          'access-control-max-age': '600',
          // Chrome asks before a public page calls a private address.
          ...(req.headers['access-control-request-private-network'] === 'true' ? { 'access-control-allow-private-network': 'true' } : {})
        })
      }
      const auth = checkToken(req, ctx, path)
      if (!auth.ok) return reply(auth.status, { error: auth.error }, auth.headers)
      return await route(req, url, reply, res)
    }
    handle().catch((err: unknown) => {
      if (err instanceof HttpError) return reply(err.status, { error: err.message })
      if (err instanceof TaskSpecError) return reply(400, { error: err.message })
      // A bug, not the client's doing: say so, keep the record, keep serving.
      console.error(`api: ${req.method ?? '?'} ${JSON.stringify((req.url ?? '').slice(0, 200))} failed: ${(err as Error)?.stack ?? String(err)}`)
      reply(500, { error: `internal error: ${(err as Error)?.message ?? String(err)}` })
    })
  }
  const server: Server = options.tls !== undefined
    ? createHttpsServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key }, listener)
    : createServer(serverOptions, listener)
  server.maxConnections = limits.maxConnections

  // Routes that answer in something other than JSON (Prometheus text, HTML, an event stream).
  // Draining ends the dashboard's live streams too: they would hold the server open until close().
  const drained = new AbortController()
  const rawRoutes: RawRoute[] = [opsRoutes(peer), uiRoutes(peer, drained.signal)]
  const route = async (req: IncomingMessage, url: URL, reply: (status: number, body: unknown) => void, res: ServerResponse): Promise<void> => {
    const path = url.pathname
    for (const raw of rawRoutes) if (await raw(req, res, url)) return
    if (req.method === 'POST' && path === '/feedback') {
      const text = await readBody(req, limits.maxBodyBytes)
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
      return reply(200, { counted: fresh, agent: o.agent, ...book.standing(o.agent) })
    }
    if (req.method === 'POST' && (path === '/tasks' || path === '/run')) {
      const { status, body } = await handlePost(peer, req, path, url.searchParams.get('wait') === '1', limits.maxBodyBytes)
      return reply(status, body)
    }
    if (req.method !== 'GET') return reply(405, { error: `${req.method} ${path} is not supported; see the API list in README` })
    if (path.startsWith('/tasks/')) {
      const id = decodeSegment(path.slice('/tasks/'.length))
      const view = peer.tasks.get(id)
      return view === undefined ? reply(404, { error: `no task ${JSON.stringify(id)} on this peer` }) : reply(200, view)
    }
    if (path === '/certificates') return reply(200, peer.consensus.certificateIds())
    if (path.startsWith('/certificates/')) {
      const id = decodeSegment(path.slice('/certificates/'.length))
      const bytes = peer.consensus.certificate(id)
      return bytes === undefined
        ? reply(404, { error: `no certificate for instance ${JSON.stringify(id)} on this peer; GET /certificates lists them` })
        : reply(200, certificateToJson(decodeCertificate(bytes)))
    }
    if (path === '/reputation') {
      const agent = url.searchParams.get('agent')
      const book = peer.consensus.book
      // Suspension is this peer's own judgement from its canaries: why an agent gets no weight or work here.
      return reply(200, agent === null
        ? { ...book.toJSON(), suspended: peer.suspects.list(1000) }
        : { agent, ...book.standing(agent), counts: book.counts(agent), suspended: peer.suspects.has(agent) })
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
        // Peers hung up on and refused for a while (graylisted, over their limits, another network), newest last.
        refused: peer.guard.refusals().slice(-100).map(r => ({ peer: r.peer, reason: r.reason, until: new Date(r.until).toISOString() })),
        index: { size: peer.index.size, searches: peer.index.plans(), hnswlib: hnswlibBuild },
        ...(bridge === undefined ? {} : { mqtt: { prefix: bridge.prefix, ...bridge.stats() } })
      })
    }
    reply(404, { error: `no route ${JSON.stringify(path.slice(0, 100))}; try /agents, /peers, /status, /tasks, /reputation, /certificates` })
  }

  const where = `${host.includes(':') ? `[${host}]` : host}:${options.port}`
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, host, () => { server.off('error', reject); resolve() })
  }).catch((err: NodeJS.ErrnoException) => {
    // A user mistake (exit 2 with this message), not a crash with a stack trace.
    throw err.code === 'EADDRINUSE'
      ? new PeerStartError(`API port ${options.port} is already in use — choose another with --api-port`)
      : err.code === 'EADDRNOTAVAIL'
        ? new PeerStartError(`cannot start the API on ${where}: this machine has no such address — check --api-listen`)
        : new Error(`cannot start the API on ${where}: ${err.message}`)
  })
  // Accept errors (too many open files…) must not kill the peer.
  server.on('error', err => { console.error(`api: ${err.message}`) })
  port = (server.address() as AddressInfo).port
  const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`
  await writeApiFile(dataDir, { url, port, pid: process.pid })
  return {
    port,
    url,
    token,
    tokenPath,
    drain: () => {
      if (draining) return
      draining = true
      server.close()
      server.closeIdleConnections()
      drained.abort()
    },
    close: async () => {
      removeApiFile(dataDir, port)
      const closed = new Promise<void>(resolve => {
        if (!server.listening) return resolve() // drained: already closed to new connections
        server.close(() => resolve())
      })
      server.closeAllConnections()
      await closed
    }
  }
}

/** Answers once, as JSON. */
function send (req: IncomingMessage, res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return
  try {
    const text = body === undefined ? '' : JSON.stringify(body)
    // A body still on the wire would be read as the next request: close instead of draining it.
    const unread = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0'
    const close = unread && !req.readableEnded
    res.writeHead(status, {
      ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) } : {}),
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
      ...(close ? { connection: 'close' } : {}),
      ...headers
    })
    res.end(text, () => { if (close) req.socket?.destroy() })
  } catch (err) {
    console.error(`api: could not answer ${status}: ${(err as Error).message}`)
    res.destroy()
  }
}

/** The request target as a URL: origin-form only (`/path?query`), bounded; anything else is a 400. */
function requestTarget (target: string | undefined, maxChars: number): URL {
  if (target === undefined || !target.startsWith('/') || target.startsWith('//')) {
    throw new HttpError(400, 'the request target must be a path such as /status (not a full URL, not //…)')
  }
  if (target.length > maxChars) throw new HttpError(400, `the request target is longer than ${maxChars} characters`)
  let url: URL
  try {
    url = new URL(target, 'http://api.invalid')
  } catch {
    throw new HttpError(400, 'the request target is not a valid path')
  }
  // "/\evil" parses as another host: refuse whatever leaves this one.
  if (url.origin !== 'http://api.invalid') throw new HttpError(400, 'the request target must be a path such as /status')
  return url
}

function decodeSegment (segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new HttpError(400, `malformed percent-encoding in ${JSON.stringify(segment.slice(0, 100))}`)
  }
}

async function handlePost (peer: Peer, req: IncomingMessage, path: string, wait: boolean, maxBodyBytes: number): Promise<{ status: number, body: unknown }> {
  const text = await readBody(req, maxBodyBytes)
  const json = (req.headers['content-type'] ?? '').includes('json')
  // The YAML parser runs at well under 1 MB/s on hostile input (a 1 MiB flow list takes seconds
  // of the event loop); JSON parses fast, so large tasks come as JSON.
  if (!json && Buffer.byteLength(text) > MAX_YAML_BYTES) {
    throw new HttpError(413, `a YAML body is limited to ${MAX_YAML_BYTES / 1024} KiB; send larger tasks as JSON (content-type: application/json)`)
  }
  let value: unknown
  try {
    value = json ? JSON.parse(text) : parseYaml(text)
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
  // An id submitted before is the same task (idempotent): say where it is now.
  if (!wait) return { status: 202, body: { id: run.id, status: peer.tasks.get(run.id)?.status ?? 'running' } }
  return { status: 200, body: await run.finished }
}

async function readBody (req: IncomingMessage, maxBytes: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > maxBytes) throw new HttpError(413, `the body exceeds ${maxBytes} bytes`)
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).byteLength
      if (size > maxBytes) throw new HttpError(413, `the body exceeds ${maxBytes} bytes`)
      chunks.push(chunk as Buffer)
    }
  } catch (err) {
    // A client that hung up or was too slow (cut by the request timeout) is not a bug of ours.
    throw err instanceof HttpError ? err : new HttpError(400, `the body was cut off: ${(err as Error).message}`)
  }
  return Buffer.concat(chunks).toString('utf8')
}
