/**
 * GET /ui (the dashboard), /events (Server-Sent Events of the peer's activity) and /route (what
 * routing would pick for a request, and why, without dispatching).
 *
 * The page's files are read once, here, and served from a fixed list: nothing from the request
 * names a file. Every answer to the page carries a strict Content-Security-Policy: scripts and
 * styles only from this origin, nothing inline, so a peer-supplied string that slipped into the
 * DOM as markup still could not run.
 */
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Peer } from '../peer.ts'
import type { ActivityEvent } from '../services/activity.ts'
import type { RawRoute } from './api.ts'

/** Concurrent /events streams; the next one is refused (each holds a socket and a listener). */
export const MAX_EVENT_STREAMS = 16
/** A stream whose unsent bytes grow past this is a reader that cannot keep up: it is dropped. */
export const MAX_STREAM_BUFFER_BYTES = 1024 * 1024
const HEARTBEAT_MS = 15_000
/** /route: the longest request text, and how many skills. */
export const MAX_ROUTE_TEXT = 500
const MAX_ROUTE_SKILLS = 16
const SKILL = /^[\p{L}\p{N}][\p{L}\p{N}._+-]{0,63}$/u

const CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
  "object-src 'none'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"
].join('; ')

/** The page's files: URL path → [file in ./ui/, content type]. */
const ASSETS: Record<string, [string, string]> = {
  '/ui': ['index.html', 'text/html; charset=utf-8'],
  '/ui/dashboard.js': ['dashboard.js', 'text/javascript; charset=utf-8'],
  '/ui/render.js': ['render.js', 'text/javascript; charset=utf-8'],
  '/ui/tasks.js': ['tasks.js', 'text/javascript; charset=utf-8'],
  '/ui/verify.js': ['verify.js', 'text/javascript; charset=utf-8'],
  '/ui/cbor.js': ['cbor.js', 'text/javascript; charset=utf-8'],
  '/ui/dashboard.css': ['dashboard.css', 'text/css; charset=utf-8'],
  '/ui/icon.svg': ['icon.svg', 'image/svg+xml']
}

/**
 * The page's own files: the same bytes for everyone, no data in them, so a browser may load them
 * without the token even beyond loopback (it cannot send one when it opens a link); every call the
 * page then makes carries the token from the fragment.
 */
export function isDashboardAsset (path: string): boolean {
  return path === '/ui/' || Object.hasOwn(ASSETS, path)
}

/**
 * The address that opens the dashboard with the token: in the fragment, which browsers never
 * send to the server (nor in Referer); the page moves it to sessionStorage and out of the address bar.
 */
export function dashboardUrl (apiUrl: string, token: string): string {
  return `${apiUrl.replace(/\/+$/, '')}/ui#token=${encodeURIComponent(token)}`
}

/** The dashboard's routes; `stopping` aborts when the API drains, which ends every live stream. */
export function uiRoutes (peer: Peer, stopping?: AbortSignal): RawRoute {
  const files = new Map(Object.entries(ASSETS).map(([path, [file, type]]) => [path, { body: readFileSync(new URL(`./ui/${file}`, import.meta.url)), type }]))
  const streams = new EventStreams(peer, stopping)
  return async (req, res, url) => {
    if (req.method !== 'GET') return false
    const path = url.pathname
    const file = files.get(path === '/ui/' ? '/ui' : path)
    if (file !== undefined) {
      res.writeHead(200, { 'content-type': file.type, 'content-length': String(file.body.byteLength), ...pageHeaders() })
      res.end(file.body)
      return true
    }
    if (path === '/events') {
      streams.open(req, res)
      return true
    }
    if (path === '/route') {
      await routePreview(peer, url, res)
      return true
    }
    return false
  }
}

function pageHeaders (): Record<string, string> {
  return {
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store'
  }
}

function json (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' })
  res.end(text)
}

/** GET /route?text=…&skills=a,b: the router's preview; nothing is dispatched or learned. */
async function routePreview (peer: Peer, url: URL, res: ServerResponse): Promise<void> {
  const text = url.searchParams.get('text')?.trim() ?? ''
  const skillsParam = url.searchParams.get('skills')?.trim() ?? ''
  const skills = skillsParam === '' ? [] : skillsParam.split(',').map(s => s.trim()).filter(s => s !== '')
  if (text.length > MAX_ROUTE_TEXT) return json(res, 400, { error: `text is limited to ${MAX_ROUTE_TEXT} characters` })
  if (skills.length > MAX_ROUTE_SKILLS) return json(res, 400, { error: `at most ${MAX_ROUTE_SKILLS} skills` })
  const bad = skills.find(s => !SKILL.test(s))
  if (bad !== undefined) return json(res, 400, { error: `skill ${JSON.stringify(bad.slice(0, 80))} is not a word (letters, digits, . _ + -, at most 64)` })
  if (text === '' && skills.length === 0) return json(res, 400, { error: 'give text=<what the task needs>, skills=a,b, or both' })
  const request = { ...(text !== '' ? { text } : {}), ...(skills.length > 0 ? { skills } : {}) }
  const { candidates, explanation } = await peer.router.preview(request)
  json(res, 200, { request, candidates, explanation })
}

/** The live /events streams of one API: bounded in number and in what each may have unsent. */
class EventStreams {
  readonly #peer: Peer
  readonly #stopping: AbortSignal | undefined
  #open = 0

  constructor (peer: Peer, stopping?: AbortSignal) {
    this.#peer = peer
    this.#stopping = stopping
  }

  open (req: IncomingMessage, res: ServerResponse): void {
    if (this.#stopping?.aborted === true) {
      return json(res, 503, { error: 'this peer is stopping: it takes no new requests' })
    }
    if (this.#open >= MAX_EVENT_STREAMS) {
      return json(res, 503, { error: `${MAX_EVENT_STREAMS} event streams are open already (each dashboard tab holds one); close one and retry` })
    }
    const after = lastEventId(req.headers['last-event-id'])
    this.#open++
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no', ...pageHeaders() })
    // A closed socket ends everything below: the API's close() (closeAllConnections), the reader
    // leaving, or this side dropping a slow reader.
    let closed = false
    const close = (): void => {
      if (closed) return
      closed = true
      this.#open--
      unsubscribe()
      clearInterval(heartbeat)
      this.#stopping?.removeEventListener('abort', end)
      res.destroy()
    }
    // A stopping peer ends the stream cleanly (the page shows it as disconnected and retries).
    const end = (): void => { if (!closed) res.end(close) }
    const write = (text: string): void => {
      if (closed) return
      res.write(text)
      // writableLength counts what neither the kernel nor the client has taken yet.
      if (res.writableLength > MAX_STREAM_BUFFER_BYTES) close()
    }
    const activity = this.#peer.activity
    // The newest of the kept events that fit half the buffer bound (events carry peers' strings).
    const frames: string[] = []
    let oldest = activity.seq + 1
    let bytes = 0
    for (const e of activity.recent(after).reverse()) {
      const f = frame(e)
      bytes += Buffer.byteLength(f)
      if (bytes > MAX_STREAM_BUFFER_BYTES / 2) break
      frames.push(f)
      oldest = e.seq
    }
    frames.reverse()
    // Events between `after` and the oldest one replayed are gone: say so instead of pretending.
    let text = 'retry: 2000\n\n'
    if (oldest > after + 1 && (after > 0 || oldest > 1)) text += `event: gap\ndata: ${JSON.stringify({ missedFrom: after + 1, missedTo: oldest - 1 })}\n\n`
    text += frames.join('')
    // Replay and subscription in one synchronous step: no event can fall between them.
    const unsubscribe = activity.subscribe(e => { write(frame(e)) })
    const heartbeat = setInterval(() => { write(': heartbeat\n\n') }, HEARTBEAT_MS)
    heartbeat.unref()
    req.socket.setTimeout(0)
    res.on('close', close)
    this.#stopping?.addEventListener('abort', end, { once: true })
    write(text)
  }
}

function frame (e: ActivityEvent): string {
  // JSON.stringify escapes newlines, so one data line carries the whole event.
  return `id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`
}

function lastEventId (header: string | string[] | undefined): number {
  const value = Array.isArray(header) ? header[0] : header
  if (value === undefined || !/^\d{1,15}$/.test(value.trim())) return 0
  return Number(value.trim())
}
