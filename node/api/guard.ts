/**
 * Who may use the API. Any web page the user opens can send requests to 127.0.0.1, so:
 * - Host must name loopback (a DNS-rebinding page sends its own host name);
 * - a request from another origin (Origin header, or Sec-Fetch-Site: cross-site/same-site) is
 *   refused unless that origin was allowed with --api-allow-origin;
 * - changes (every method but GET) need the bearer token, and every route does when the API
 *   listens beyond loopback. A page cannot read the token file, so it cannot forge one.
 * Clients that are not browsers (curl, the CLI, Node's fetch) send no Origin and pass.
 */
import type { IncomingMessage } from 'node:http'
import { bearerMatches } from './token.ts'
import { isDashboardAsset } from './ui-routes.ts'

export interface GuardContext {
  scheme: 'http' | 'https'
  /** The port the API really listens on (known once it listens). */
  port: () => number
  /** The host it is bound to. */
  host: string
  /** Bound on loopback: Host is checked and reads need no token. */
  loopback: boolean
  token: string
  /** Where a client finds the token, for the 401 reason. */
  tokenHint: string
  allowOrigins: ReadonlySet<string>
}

export type Verdict =
  | { ok: true, /** An allowed cross-origin caller: answers carry CORS headers for it. */ cors?: string }
  | { ok: false, status: number, error: string, headers?: Record<string, string> }

const quote = (s: string): string => JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}…` : s)

/** Host, Origin and Sec-Fetch-Site: is this request from this machine's user rather than a web page? */
export function checkSource (req: IncomingMessage, ctx: GuardContext): Verdict {
  const host = (req.headers.host ?? '').toLowerCase()
  if (host === '') return { ok: false, status: 400, error: 'the request has no Host header' }
  if (ctx.loopback && !loopbackHosts(ctx).has(host)) {
    return { ok: false, status: 421, error: `Host ${quote(host)} is not this API: it answers to 127.0.0.1:${ctx.port()}, localhost:${ctx.port()} or [::1]:${ctx.port()} only (a web page reaching it through another name is refused)` }
  }
  const origin = req.headers.origin
  const allowed = origin !== undefined && ctx.allowOrigins.has(origin)
  if (origin !== undefined && !allowed && origin !== `${ctx.scheme}://${host}`) {
    return { ok: false, status: 403, error: `requests from origin ${quote(origin)} are refused: web pages may not drive this peer — allow one with --api-allow-origin URL` }
  }
  // Without Origin (an <img>, a link, a form GET), the browser still says where it came from.
  const site = req.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none' && !allowed) {
    return { ok: false, status: 403, error: `a request from another site (Sec-Fetch-Site: ${quote(site)}) is refused: web pages may not drive this peer` }
  }
  return allowed ? { ok: true, cors: origin } : { ok: true }
}

/** The bearer token, for every change and for every route beyond loopback. */
export function checkToken (req: IncomingMessage, ctx: GuardContext, path: string): Verdict {
  const needed = req.method !== 'GET' || (!ctx.loopback && !isDashboardAsset(path))
  if (!needed || bearerMatches(req.headers.authorization, ctx.token)) return { ok: true }
  const what = req.method === 'GET' ? `this API listens beyond loopback, so ${req.method} ${path}` : `${req.method} ${path}`
  return {
    ok: false,
    status: 401,
    error: `${what} needs the API token: send Authorization: Bearer <token>, the token being in ${ctx.tokenHint} (agentmesh run/submit read it themselves: give them --data <the peer's data directory>)`,
    headers: { 'www-authenticate': 'Bearer realm="agentmesh"' }
  }
}

function loopbackHosts (ctx: GuardContext): Set<string> {
  const port = ctx.port()
  const names = ['127.0.0.1', 'localhost', '[::1]', ctx.host.includes(':') ? `[${ctx.host}]` : ctx.host]
  const hosts = new Set(names.map(n => `${n}:${port}`))
  // A client leaves out the scheme's default port.
  if (port === (ctx.scheme === 'https' ? 443 : 80)) for (const n of names) hosts.add(n)
  return hosts
}
