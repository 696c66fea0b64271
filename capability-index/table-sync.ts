/**
 * Keeps a CapabilityIndex in step with the capability table's events: `added` and `updated`
 * embed the VCV's text with this peer's embedder and upsert, `removed` (expiry or tombstone)
 * removes. The VCV's own `embedding` field is ignored: each peer embeds with its own model, so
 * the vectors in one index always compare.
 *
 * Embedding is async and events are not: a removal, or a newer version, can arrive while an
 * embed is in flight. Every event takes a sequence number per agent, and an embed only lands if
 * its event is still the agent's latest; so a late embed never brings back a removed agent nor
 * overwrites a newer version.
 *
 * A flood (thousands of VCVs in one burst) must not freeze the peer: at most MAX_EMBEDS embeds run
 * at once, the rest wait their turn, and each waiting turn starts on a fresh event-loop iteration,
 * so the API, beacons and gossip are served between upserts. With `cpuShare`, upserts also take at
 * most that share of one core over time (an HNSW insert of near-duplicate vectors costs ~2 ms):
 * a Sybil flood of 10k agents is indexed over a minute or more instead of starving routing,
 * beacons and the API, and of other processes on the machine.
 */
import type { SignedVcv, TableEvent, VcvBody } from '../protocols/capability/index.ts'
import type { Embedder } from './embedder.ts'
import type { CapabilityIndex, IndexRecord } from './index-store.ts'

/** The text a VCV is embedded from: description, then skills. One function, so every peer agrees. */
export function capabilityText (body: Pick<VcvBody, 'description' | 'skills'>): string {
  return `${body.description}\n${body.skills.join(' ')}`
}

/** The index fields of a VCV, everything but the vector. */
export function recordFields (body: VcvBody): Omit<IndexRecord, 'agent' | 'vector' | 'model'> {
  return {
    skills: body.skills,
    policy: body.policy,
    schemaHash: Buffer.from(body.schemaHash).toString('hex'),
    cost: body.cost,
    latencyMs: body.latencyMs,
    capacity: body.capacity
  }
}

export interface IndexSyncOptions {
  /** An embed that failed (default: a process warning). The agent keeps its previous vector, with the new fields. */
  onError?: (err: Error, agent: string) => void
  /**
   * Most of one core the upserts may use over time, in (0, 1] (default: no limit). Upserts run
   * while the budget (this share of the time elapsed, at most BURST_MS ahead) lasts, then wait.
   */
  cpuShare?: number
  /** Monotonic ms for the CPU budget (default performance.now). */
  clock?: () => number
}

/** Upsert time the budget may hold in reserve: a small burst (a reload, a new peer's agents) runs at once. */
const BURST_MS = 250

/** Most index maintenance at once (`maintain`): a sub-index build goes in slices this long. */
const MAINTAIN_SLICE_MS = 20

/** Embeds (and upserts) at once: a remote embedder gets a bounded number of requests. */
const MAX_EMBEDS = 8

export class IndexSync {
  readonly #index: CapabilityIndex
  readonly #embedder: Embedder
  readonly #onError: (err: Error, agent: string) => void
  /** The latest event per agent, in flight or applied; gone once the agent is removed. */
  readonly #latest = new Map<string, { seq: number, version: number }>()
  /** The text whose vector the index holds, per agent: a new version with the same text needs no embed. */
  readonly #text = new Map<string, string>()
  readonly #inFlight = new Set<Promise<void>>()
  #seq = 0
  #running = 0
  readonly #waiting: Array<() => void> = []
  readonly #cpuShare: number | undefined
  readonly #clock: () => number
  /** CPU ms the upserts may still spend, and when it was last topped up. */
  #budget = BURST_MS
  #budgetAt: number
  #maintainFailed = false

  constructor (index: CapabilityIndex, embedder: Embedder, options: IndexSyncOptions = {}) {
    if (index.model !== embedder.model || index.dims !== embedder.dims) {
      throw new Error(`the index is for ${index.model} (${index.dims} dims) but the embedder is ${embedder.model} (${embedder.dims} dims)`)
    }
    this.#index = index
    this.#embedder = embedder
    this.#onError = options.onError ?? ((err, agent) => { process.emitWarning(`capability index: could not embed ${agent}: ${err.message}`) })
    if (options.cpuShare !== undefined && !(options.cpuShare > 0 && options.cpuShare <= 1)) throw new RangeError('cpuShare must be in (0, 1]')
    this.#cpuShare = options.cpuShare
    this.#clock = options.clock ?? (() => performance.now())
    this.#budgetAt = this.#clock()
  }

  /** Feeds one table event; events other than added, updated and removed are ignored. Never rejects. */
  async handle (event: TableEvent): Promise<void> {
    if (event.type === 'added') return await this.onAdded(event.vcv)
    if (event.type === 'updated') return await this.onUpdated(event.vcv)
    if (event.type === 'removed') this.onRemoved(event.agent)
  }

  async onAdded (vcv: SignedVcv): Promise<void> { await this.#apply(vcv) }
  async onUpdated (vcv: SignedVcv): Promise<void> { await this.#apply(vcv) }

  onRemoved (agent: string): void {
    this.#latest.delete(agent)
    this.#text.delete(agent)
    this.#index.remove(agent)
  }

  /** The text behind each indexed vector: saved with the index, so a reload re-embeds nothing unchanged. */
  texts (): Record<string, string> { return Object.fromEntries(this.#text) }

  /** After loading a saved index: the texts its vectors came from (entries it does not hold are ignored). */
  restoreTexts (texts: Record<string, string>): void {
    for (const [agent, text] of Object.entries(texts)) if (typeof text === 'string' && this.#index.has(agent)) this.#text.set(agent, text)
  }

  /** Resolves once no embed is in flight (for shutdown and tests). */
  async idle (): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight])
  }

  async #apply (vcv: SignedVcv): Promise<void> {
    const { agent, version } = vcv.body
    const latest = this.#latest.get(agent)
    // The table only moves versions forward; this also holds against a caller replaying events.
    if (latest !== undefined && latest.version >= version) return
    const seq = ++this.#seq
    this.#latest.set(agent, { seq, version })
    const text = capabilityText(vcv.body)
    const fields = recordFields(vcv.body)
    if (this.#text.get(agent) === text && this.#index.has(agent)) {
      // A re-issue (every third of the lifetime) usually changes nothing embedded: no embed call.
      this.#index.updateFields(agent, fields)
      return
    }
    const work = this.#turn(async () => { await this.#embedAndUpsert(agent, seq, text, fields) })
    this.#inFlight.add(work)
    try {
      await work
    } finally {
      this.#inFlight.delete(work)
    }
  }

  /** Runs `job` when one of the MAX_EMBEDS slots is free; a waiting job starts on a fresh event-loop iteration. */
  async #turn (job: () => Promise<void>): Promise<void> {
    if (this.#running >= MAX_EMBEDS) await new Promise<void>(resolve => { this.#waiting.push(resolve) })
    else this.#running++
    try {
      await job()
    } finally {
      // The slot passes straight to the next waiter (so #running still counts it), after I/O had its turn.
      const next = this.#waiting.shift()
      if (next !== undefined) setImmediate(next)
      else this.#running--
    }
  }

  /**
   * The index's background work (`CapabilityIndex.maintain`: sub-indexes chosen after misses or
   * changes, built a slice at a time) from the same CPU budget as upserts, at most
   * MAINTAIN_SLICE_MS per call. A peer calls it on a timer. Returns whether work remains; never throws.
   */
  maintain (): boolean {
    if (this.#maintainFailed) return false
    const slice = Math.min(MAINTAIN_SLICE_MS, this.#refill())
    if (slice <= 0) return true
    const started = this.#clock()
    try {
      return this.#index.maintain(slice, this.#clock)
    } catch (err) {
      // Said once, then no more attempts (the same step would fail every 100 ms): searches go on
      // through the main index, correct but without the sub-indexes still being built.
      this.#maintainFailed = true
      process.emitWarning(`capability index: sub-index maintenance failed and stops until restart (searches go on without the sub-indexes being built): ${(err as Error)?.message ?? String(err)}`)
      return false
    } finally {
      if (this.#cpuShare !== undefined) this.#budget -= this.#clock() - started
    }
  }

  /** The CPU budget now, in ms (Infinity without a cpuShare). */
  #refill (): number {
    const share = this.#cpuShare
    if (share === undefined) return Infinity
    const now = this.#clock()
    this.#budget = Math.min(BURST_MS, this.#budget + (now - this.#budgetAt) * share)
    this.#budgetAt = now
    return this.#budget
  }

  /**
   * undefined when the CPU budget is positive (always, without a cpuShare), else a wait after which
   * to ask again. The check is synchronous, so the caller's upsert follows it with nothing between.
   */
  #cpuTurn (): Promise<void> | undefined {
    const share = this.#cpuShare
    if (share === undefined || this.#refill() > 0) return
    return new Promise<void>(resolve => setTimeout(resolve, Math.ceil(-this.#budget / share) + 1))
  }

  async #embedAndUpsert (agent: string, seq: number, text: string, fields: Omit<IndexRecord, 'agent' | 'vector' | 'model'>): Promise<void> {
    let vector: Float32Array | undefined
    let error: Error | undefined
    try {
      vector = (await this.#embedder.embed([text]))[0]
      if (vector === undefined) error = new Error('the embedder returned no vector')
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err))
    }
    for (let wait = this.#cpuTurn(); wait !== undefined; wait = this.#cpuTurn()) await wait
    // Superseded while embedding: a newer version or a removal owns the agent now.
    if (this.#latest.get(agent)?.seq !== seq) return
    try {
      if (vector !== undefined && error === undefined) {
        const started = this.#clock()
        this.#index.upsert({ agent, vector, model: this.#embedder.model, ...fields })
        this.#budget -= this.#clock() - started
        this.#text.set(agent, text)
        return
      }
    } catch (err) {
      error = err as Error
    }
    // Keep the old vector but never stale fields: policy and schema filters must see the latest.
    if (this.#index.has(agent)) this.#index.updateFields(agent, fields)
    this.#onError(error ?? new Error('unknown embedding failure'), agent)
  }
}
