/**
 * Retry schedule for dials that must keep trying (a bootstrap peer that is down, a committee
 * member we lost): exponential from `baseMs` to `maxMs`, with full jitter from a random input so
 * a restarted seed is not hit by every peer in the same second.
 */
export interface Backoff { baseMs: number, maxMs: number }

export const DIAL_BACKOFF: Backoff = { baseMs: 1000, maxMs: 60_000 }

/** Delay before retry number `attempt` (0 = the first retry); `random` in [0, 1). */
export function retryDelay (attempt: number, random: number, b: Backoff = DIAL_BACKOFF): number {
  const ceiling = Math.min(b.maxMs, b.baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(ceiling / 2 + (ceiling / 2) * random)
}
