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

import { TokenBuckets, type Budget } from '../buckets.ts'

export type { Budget }

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

/** `has(source, path, now)` and `take(source, path, now)`: a neighbour's budget of new hosts on a path. */
export class NewHostAdmission extends TokenBuckets<keyof AdmissionBudgets> {
  constructor (budgets: AdmissionBudgets = DEFAULT_ADMISSION) {
    super(budgets, MAX_SOURCES)
  }
}
