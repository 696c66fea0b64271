/**
 * GET /ui (the dashboard), /events (Server-Sent Events of the peer's activity) and /route (what
 * routing would pick for a request, and why, without dispatching).
 */
import type { Peer } from '../peer.ts'
import type { RawRoute } from './api.ts'

export function uiRoutes (_peer: Peer): RawRoute {
  return async () => false
}
