/**
 * Token buckets per key and kind, over the time the caller passes in (pure: no clock here). At
 * most `maxKeys` buckets are kept; the least recently used is forgotten first and starts afresh.
 * The capability table's new-host admission and the MQTT bridge's per-client budgets are both this.
 */

export interface Budget {
  /** Taken at once from a full bucket. */
  burst: number
  /** Refilled per second. */
  perSecond: number
}

export class TokenBuckets<K extends string> {
  readonly #budgets: Record<K, Budget>
  readonly #maxKeys: number
  readonly #buckets = new Map<string, { tokens: number, at: number }>()

  constructor (budgets: Record<K, Budget>, maxKeys: number) {
    for (const b of Object.values<Budget>(budgets)) {
      if (!(b.burst >= 1) || !(b.perSecond >= 0)) throw new RangeError('a budget needs burst >= 1 and perSecond >= 0')
    }
    this.#budgets = budgets
    this.#maxKeys = maxKeys
  }

  /** Whether `key` could take one from its `kind` bucket now (nothing is taken). */
  has (key: string, kind: K, now: number): boolean {
    return this.#tokens(key, kind, now) >= 1
  }

  /** Takes one from `key`'s `kind` bucket; false when it is spent. */
  take (key: string, kind: K, now: number): boolean {
    const id = `${kind} ${key}`
    const tokens = this.#tokens(key, kind, now)
    this.#buckets.delete(id) // re-inserted: Map order is recency order
    if (this.#buckets.size >= this.#maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!)
    const ok = tokens >= 1
    this.#buckets.set(id, { tokens: ok ? tokens - 1 : tokens, at: now })
    return ok
  }

  #tokens (key: string, kind: K, now: number): number {
    const budget = this.#budgets[kind]
    const bucket = this.#buckets.get(`${kind} ${key}`)
    if (bucket === undefined) return budget.burst
    return Math.min(budget.burst, bucket.tokens + Math.max(0, now - bucket.at) / 1000 * budget.perSecond)
  }
}
