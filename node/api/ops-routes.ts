/**
 * GET /metrics (Prometheus text), /health (alive) and /ready (converged enough to route).
 */
import type { Peer } from '../peer.ts'
import type { RawRoute } from './api.ts'

export function opsRoutes (_peer: Peer): RawRoute {
  return async () => false
}
