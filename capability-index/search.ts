/**
 * How a query finds its candidates: the query planner and the ways it can search.
 *
 * - No filter: HNSW over every shard of the group.
 * - A filter: the cheaper, by a cost model, of
 *   - an exact scan of the agents holding the filter's rarest skill (postings per skill), and
 *   - "post-filter": HNSW without a filter for enough results to expect 1.25n that pass, then the
 *     filter over them. If fewer than n pass (the filter is unlike the query's neighbourhood), it
 *     widens once by the share it saw pass; if that still falls short, or nothing passed,
 *     "in-filter": HNSW with the filter inside the search, which walks past ~1/selectivity
 *     failing nodes per match but returns n whenever n agents pass.
 *
 * Post-filtering a top-m list that holds n passing agents gives the same n as an in-filter search
 * up to HNSW's recall: a passing agent nearer than the n-th would be in the top-m too. Measured
 * at 100k × 384 (`npm run bench -- route`, CPU-tuned build): unfiltered 0.7–0.8 ms, post-filter
 * over a quarter of agents ~1 ms, in-filter 10–12 ms, an exact scan ~0.6 µs per agent.
 */
import { type Entry, type Group, unit } from './shard.ts'
import type { SearchFilter } from './types.ts'

/** The filter as one predicate over entries, with the query's lists lower-cased once. */
export function admits (filter: SearchFilter | undefined): (entry: Entry) => boolean {
  if (filter === undefined) return () => true
  const skills = (filter.skills ?? []).map(s => s.toLowerCase())
  const policy = filter.policy ?? []
  const schemaHash = filter.schemaHash?.toLowerCase()
  const { available, exclude } = filter
  return entry => {
    for (const s of skills) if (!entry.skills.has(s)) return false
    for (const p of policy) if (!entry.policy.has(p)) return false
    if (schemaHash !== undefined && entry.record.schemaHash !== schemaHash) return false
    if (exclude?.has(entry.record.agent) === true) return false
    return available === undefined || available(entry.record.agent)
  }
}

export type Found = Array<{ entry: Entry, similarity: number }>

/** An exact scan costs about this many agents' dot products per unit of HNSW ef (measured, see above). */
const SCAN_AGENTS_PER_EF = 8
/** A post-filter fetches at most this many times ef unfiltered results; past that, in-filter. */
const POST_FILTER_MAX = 8
/**
 * A post-filter first fetches enough to expect this many times n passes at the filter's global
 * share. Near the query a routing filter usually passes more than globally (the skill matches
 * what the request is about); 1.25 measured ~10% faster than 2 at 100k with as few misses.
 */
const POST_FILTER_MARGIN = 1.25

export interface SearchPlan {
  /** HNSW candidate list per shard. */
  ef: number
  /** Scan exactly when the rarest skill has at most this many agents (default: the cost model). */
  flatScanLimit?: number
  /** Scan exactly whatever the filter (checks, measurements). */
  exact: boolean
}

/** Which way a search went; `post-filter-missed` is a post-filter that fell back to in-filter. */
export type PlanName = 'hnsw' | 'scan' | 'post-filter' | 'post-filter-missed' | 'in-filter'

/** The n most similar agents of the group that pass the filter (unsorted), by the cheapest plan. */
export function findCandidates (group: Group, point: number[], filter: SearchFilter | undefined, n: number, plan: SearchPlan): { found: Found, plan: PlanName } {
  const accept = admits(filter)
  let rarest: ReadonlySet<Entry> | undefined
  for (const skill of filter?.skills ?? []) {
    const posting = group.postings.get(skill.toLowerCase())
    if (posting === undefined) return { found: [], plan: 'scan' }
    if (rarest === undefined || posting.size < rarest.size) rarest = posting
  }
  if (plan.exact) return { found: flatScan(rarest ?? groupEntries(group), unit(point), accept, n), plan: 'scan' }
  if (filter === undefined) return { found: hnswSearch(group, point, undefined, n, plan.ef), plan: 'hnsw' }
  // The share of agents holding the rarest skill bounds the filter's selectivity from above;
  // other fields (policy, schema, availability) are usually broad and are not estimated.
  const pool = rarest?.size ?? group.live
  let wide = Math.max(plan.ef, Math.ceil(POST_FILTER_MARGIN * n * group.live / Math.max(pool, 1)))
  const scan = plan.flatScanLimit !== undefined ? pool <= plan.flatScanLimit : pool <= SCAN_AGENTS_PER_EF * Math.min(wide, POST_FILTER_MAX * plan.ef)
  if (rarest !== undefined && scan) return { found: flatScan(rarest, unit(point), accept, n), plan: 'scan' }
  let tried = false
  for (let attempt = 0; attempt < 2 && wide <= POST_FILTER_MAX * plan.ef; attempt++) {
    tried = true
    const passing = hnswSearch(group, point, undefined, wide, wide).filter(({ entry }) => accept(entry))
    if (passing.length >= n) return { found: passing, plan: 'post-filter' }
    if (passing.length === 0) break
    // Widen by the share that passed here: the filter's selectivity near the query.
    wide = Math.ceil(2 * n * wide / passing.length)
  }
  return { found: hnswSearch(group, point, accept, n, plan.ef), plan: tried ? 'post-filter-missed' : 'in-filter' }
}

/**
 * Every shard of the group, with the filter inside the HNSW search; unsorted across shards.
 * Without a filter no callback is passed (each costs a native-to-JS call): removed labels are
 * marked deleted in hnswlib, and a label without a live entry is dropped from the results anyway.
 */
export function hnswSearch (group: Group, point: number[], accept: ((entry: Entry) => boolean) | undefined, n: number, ef: number): Found {
  const found: Found = []
  for (const shard of group.shards) {
    if (shard.live === 0) continue
    shard.setEf(ef)
    const entries = shard.entries
    if (accept === undefined) {
      collect(shard.hnsw.searchKnn(point, Math.min(n, shard.capacity)), entries, found)
      continue
    }
    // An exception thrown inside hnswlib's filter callback aborts the process (hnswlib-node
    // 3.0), so a throwing `available` is caught here and rethrown once the search returns.
    let failed = false
    let failure: unknown
    const result = shard.hnsw.searchKnn(point, Math.min(n, shard.capacity), label => {
      const entry = entries[label]
      if (entry === undefined || failed) return false
      try {
        return accept(entry)
      } catch (err) {
        failed = true
        failure = err
        return false
      }
    })
    if (failed) throw failure
    collect(result, entries, found)
  }
  return found
}

function collect (result: { neighbors: number[], distances: number[] }, entries: Array<Entry | undefined>, found: Found): void {
  for (let i = 0; i < result.neighbors.length; i++) {
    const entry = entries[result.neighbors[i]!]
    if (entry !== undefined) found.push({ entry, similarity: 1 - result.distances[i]! })
  }
}

export function * groupEntries (group: Group): Iterable<Entry> {
  for (const shard of group.shards) for (const entry of shard.entries) if (entry !== undefined) yield entry
}

/** Exact: the n most similar of `pool` that pass the filter. */
export function flatScan (pool: Iterable<Entry>, q: Float32Array, accept: (entry: Entry) => boolean, n: number): Found {
  const top: Found = []
  for (const entry of pool) {
    if (!accept(entry)) continue
    const v = entry.shard.vectors
    const base = entry.label * q.length
    let similarity = 0
    for (let d = 0; d < q.length; d++) similarity += q[d]! * v[base + d]!
    if (top.length === n && similarity <= top[n - 1]!.similarity) continue
    let at = top.length < n ? top.length : n - 1
    if (top.length < n) top.push({ entry, similarity })
    while (at > 0 && top[at - 1]!.similarity < similarity) { top[at] = top[at - 1]!; at-- }
    top[at] = { entry, similarity }
  }
  return top
}
