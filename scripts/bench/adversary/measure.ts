/**
 * What the honest peers look like from outside while they are attacked: GET /status latency,
 * their connections and gossip scores (GET /peers), and their memory (VmRSS).
 */
import { failureOf, getJson, rssMb } from './api.ts'
import type { HonestPeer } from './harness.ts'
import * as gossip from '../../../node/network/gossip.ts'

/**
 * The graylist threshold the peers run with: agentmesh's own once it sets one (SCORE_THRESHOLDS),
 * else gossipsub's default. A `graylisted` flag in GET /peers, when present, wins over both.
 */
export const GRAYLIST_THRESHOLD = (gossip as { SCORE_THRESHOLDS?: { graylistThreshold?: number } }).SCORE_THRESHOLDS?.graylistThreshold ?? -80

interface PeerView { peerId: string, gossipScore: number | null, graylisted?: boolean }
interface RogueSighting { at: number, peer: number, connected: boolean, score: number | null, graylisted: boolean }

/** Honest-honest connections, as unordered pairs, seen by any honest peer that answers. */
export async function honestLinks (honest: HonestPeer[]): Promise<Set<string>> {
  const ids = new Map(honest.map(h => [h.peerId, h.index]))
  const pairs = new Set<string>()
  await Promise.all(honest.map(async h => {
    if (h.crashed !== undefined) return
    try {
      for (const c of await getJson(h.apiPort, '/peers') as PeerView[]) {
        const j = ids.get(c.peerId)
        if (j !== undefined && j !== h.index) pairs.add(`${Math.min(h.index, j)}-${Math.max(h.index, j)}`)
      }
    } catch {}
  }))
  return pairs
}

export async function rssOf (honest: HonestPeer[]): Promise<Map<number, number>> {
  const out = new Map<number, number>()
  await Promise.all(honest.map(async h => {
    const mb = h.crashed === undefined ? await rssMb(h.child.pid) : undefined
    if (mb !== undefined) out.set(h.index, mb)
  }))
  return out
}

/** Polls every honest API until stopped: status latency every 250 ms, peers and RSS every second. */
export class Monitor {
  readonly latencies: number[] = []
  readonly apiErrors = new Map<string, number>()
  readonly sightings: RogueSighting[] = []
  readonly rssPeak = new Map<number, number>()
  readonly #timers: NodeJS.Timeout[] = []
  readonly #busy = new Set<string>()
  readonly #honest: HonestPeer[]
  readonly #rogue: string

  constructor (honest: HonestPeer[], rogue: string) {
    this.#honest = honest
    this.#rogue = rogue
    this.#timers.push(setInterval(() => { for (const h of honest) this.#once(`s${h.index}`, async () => { await this.#status(h) }) }, 250))
    this.#timers.push(setInterval(() => { for (const h of honest) this.#once(`p${h.index}`, async () => { await this.#peers(h) }) }, 1000))
    this.#timers.push(setInterval(() => { this.#once('rss', async () => { for (const [i, mb] of await rssOf(honest)) this.rssPeak.set(i, Math.max(mb, this.rssPeak.get(i) ?? 0)) }) }, 1000))
  }

  stop (): void { for (const t of this.#timers) clearInterval(t) }

  /** One poll of a kind at a time per peer: a hung API shows as one long latency, not a pile-up. */
  #once (key: string, fn: () => Promise<void>): void {
    if (this.#busy.has(key)) return
    this.#busy.add(key)
    void fn().finally(() => this.#busy.delete(key))
  }

  async #status (h: HonestPeer): Promise<void> {
    if (h.crashed !== undefined) return
    const started = performance.now()
    try {
      await getJson(h.apiPort, '/status', 10_000)
    } catch (err) {
      if (h.crashed !== undefined) return // the crash is counted as a crash, not as latency
      const why = failureOf(err)
      this.apiErrors.set(why, (this.apiErrors.get(why) ?? 0) + 1)
    }
    this.latencies.push(performance.now() - started)
  }

  async #peers (h: HonestPeer): Promise<void> {
    if (h.crashed !== undefined) return
    const at = Date.now()
    try {
      const view = (await getJson(h.apiPort, '/peers', 10_000) as PeerView[]).find(c => c.peerId === this.#rogue)
      const score = view?.gossipScore ?? null
      const graylisted = view?.graylisted ?? (score !== null && score < GRAYLIST_THRESHOLD)
      this.sightings.push({ at, peer: h.index, connected: view !== undefined, score, graylisted })
    } catch {}
  }

  /**
   * Ms from the rogue's first attack message until every live honest peer had dropped it or
   * scored it below the graylist threshold, and kept it so to the end; null if that never held.
   */
  bannedAfter (firstAttackAt: number | null): { bannedMs: number | null, droppedBy: number, graylistedBy: number } {
    const latest = new Map<number, RogueSighting>()
    const live = (): HonestPeer[] => this.#honest.filter(h => h.crashed === undefined)
    const banned = (s: RogueSighting | undefined): boolean => s !== undefined && (!s.connected || s.graylisted)
    let since: number | null = null
    for (const s of [...this.sightings].sort((a, b) => a.at - b.at)) {
      latest.set(s.peer, s)
      if (firstAttackAt === null || s.at < firstAttackAt) continue
      const all = live().every(h => banned(latest.get(h.index)))
      if (all) since ??= s.at
      else since = null
    }
    const final = live().map(h => latest.get(h.index))
    return {
      bannedMs: firstAttackAt === null || since === null ? null : since - firstAttackAt,
      droppedBy: final.filter(s => s !== undefined && !s.connected).length,
      graylistedBy: final.filter(s => s?.connected === true && s.graylisted).length
    }
  }
}

export function percentile (xs: number[], p: number): number | null {
  if (xs.length === 0) return null
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}
