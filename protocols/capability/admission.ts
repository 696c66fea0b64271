/**
 * How many hosts the table has never held each neighbour may introduce, as token buckets over
 * the time the driver passes in. A signature costs nothing to make, so without a bound one peer
 * holding a thousand fresh keys makes every peer verify, store, index and forward a thousand
 * hosts' agents (the adversary harness's sybil-keys: ~10 s of CPU per peer for 10k agents).
 * With it, what a neighbour brings beyond its budget is ignored (never penalised: an honest
 * forwarder can relay a burst), is not forwarded, and comes back through anti-entropy once the
 * budget refills, so a flood is cut at the first hop and honest newcomers still get in.
 *
 * Gossip and anti-entropy get separate budgets: a peer joining a large network learns thousands
 * of hosts from each neighbour's digest answer at once, while on gossip a neighbour relays only
 * the hosts that joined since, a few a minute in an honest network.
 */

export interface Budget {
  /** New hosts a neighbour may bring at once. */
  burst: number
  /** New hosts per second the budget refills by. */
  perSecond: number
}

export interface AdmissionBudgets {
  gossip: Budget
  direct: Budget
}

export const DEFAULT_ADMISSION: AdmissionBudgets = {
  gossip: { burst: 64, perSecond: 1 },
  direct: { burst: 4096, perSecond: 64 }
}

/** Neighbours tracked at most; the least recently seen is forgotten first (it starts afresh). */
const MAX_SOURCES = 4096

export class NewHostAdmission {
  readonly #budgets: AdmissionBudgets
  readonly #buckets = new Map<string, { tokens: number, at: number }>()

  constructor (budgets: AdmissionBudgets = DEFAULT_ADMISSION) {
    for (const b of [budgets.gossip, budgets.direct]) {
      if (!(b.burst >= 1) || !(b.perSecond >= 0)) throw new RangeError('an admission budget needs burst >= 1 and perSecond >= 0')
    }
    this.#budgets = budgets
  }

  /** Whether `source` could bring one more new host on `path` now (nothing is taken). */
  has (source: string, path: keyof AdmissionBudgets, now: number): boolean {
    return this.#tokens(source, path, now) >= 1
  }

  /** Takes one new host from `source`'s budget on `path`; false when it is spent. */
  take (source: string, path: keyof AdmissionBudgets, now: number): boolean {
    const key = `${path} ${source}`
    const tokens = this.#tokens(source, path, now)
    this.#buckets.delete(key) // re-inserted: Map order is recency order
    if (this.#buckets.size >= MAX_SOURCES) this.#buckets.delete(this.#buckets.keys().next().value!)
    const ok = tokens >= 1
    this.#buckets.set(key, { tokens: ok ? tokens - 1 : tokens, at: now })
    return ok
  }

  #tokens (source: string, path: keyof AdmissionBudgets, now: number): number {
    const budget = this.#budgets[path]
    const bucket = this.#buckets.get(`${path} ${source}`)
    if (bucket === undefined) return budget.burst
    return Math.min(budget.burst, bucket.tokens + Math.max(0, now - bucket.at) / 1000 * budget.perSecond)
  }
}
