/**
 * GET /metrics (Prometheus text), /health (alive) and /ready (converged enough to route).
 * Each answer reads counts the peer keeps as things happen: a scrape or a probe never walks the
 * table, the index or the tasks, so a 100k-agent table costs it nothing more.
 */
import type { ServerResponse } from 'node:http'
import type { Peer } from '../peer.ts'
import type { RawRoute } from './api.ts'

const NO_STORE = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }

export function opsRoutes (peer: Peer): RawRoute {
  return async (req, res, url) => {
    if (req.method !== 'GET') return false
    switch (url.pathname) {
      case '/metrics': {
        const body = Buffer.from(await peer.metrics.text())
        res.writeHead(200, { 'content-type': peer.metrics.contentType, 'content-length': String(body.byteLength), ...NO_STORE })
        res.end(body)
        return true
      }
      case '/health':
        // Answering at all is the proof: the event loop runs and the API serves.
        json(res, 200, { ok: true })
        return true
      case '/ready': {
        const { ready, reasons } = peer.metrics.readiness()
        json(res, ready ? 200 : 503, ready ? { ready: true } : { ready: false, reasons })
        return true
      }
      default:
        return false
    }
  }
}

function json (res: ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body))
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(bytes.byteLength), ...NO_STORE })
  res.end(bytes)
}
