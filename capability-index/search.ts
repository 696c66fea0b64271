/**
 * How a query finds its candidates: the query planner and the ways it can search.
 *
 * - No filter: HNSW over every shard of the group.
 * - A filter: the cheapest, by a cost model (in units of one candidate of a main-index search), of
 *   - an exact scan of the agents holding the filter's rarest skill (postings per skill);
 *   - the sub-index of the rarest required skill that has one (`skill-indexes.ts` chooses which
 *     skills do: those held by too many agents for a cheap scan and too few for a post-filter,
 *     and broad ones whose post-filters this planner saw miss):
 *     its nearest members, then the rest of the filter, widened once by the share that passed,
 *     and if that falls short the filter inside that small graph; and
 *   - "post-filter": HNSW without a filter for enough results to expect 1.25n that pass, then the
 *     filter over them, nearest first, until n pass. If fewer than n pass (the filter is unlike
 *     the query's neighbourhood), it widens once by the share it saw pass; if that still falls
 *     short, or nothing passed, "in-filter": HNSW with the filter inside the search, which walks
 *     past ~1/selectivity failing nodes per match but returns n whenever n agents pass.
 *
 * Post-filtering a top-m list that holds n passing agents gives the same n as an in-filter search
 * up to HNSW's recall: a passing agent nearer than the n-th would be in the top-m too. Measured
 * at 100k × 384 (`npm run bench -- route`, CPU-tuned build): unfiltered ~0.5 ms; post-filter over
 * a quarter of the agents ~0.6 ms (checking all 150 results instead of stopping at n cost 0.1 ms
 * more: each check reads a record, a cache miss apiece); a skill sub-index of 0.4–4k agents
 * 0.16–0.33 ms; in-filter 10–12 ms; an exact scan ~0.8 µs per agent.
 */
import { type Entry, type Group, type Hnsw, type Shard, unit } from './shard.ts'
import type { SkillIndex } from './skill-index.ts'
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

/**
 * Costs are in units of one candidate of a main-index HNSW search (its ef): ~3.3 µs at 100k × 384
 * with the CPU-tuned build. An exact scan costs ~0.8 µs per agent in JS, so about this many
 * agents per unit (measured, see above).
 */
const SCAN_AGENTS_PER_EF = 4
/**
 * A skill sub-index search costs about this fraction of a main-index search with the same ef: its
 * graph is smaller and shallower (1–17k agents: 0.1–0.26 ms at ef 150, against ~0.5 ms).
 */
const SKILL_INDEX_COST = 0.5
/** A post-filter fetches at most this many times ef unfiltered results; past that, in-filter. */
const POST_FILTER_MAX = 8
/**
 * A post-filter first fetches enough to expect this many times n passes at the filter's global
 * share. Near the query a routing filter usually passes more than globally (the skill matches
 * what the request is about); 1.25 measured ~10% faster than 2 at 100k with as few misses.
 */
const POST_FILTER_MARGIN = 1.25

/** Below this many agents an exact scan beats a sub-index search: no sub-index is worth building. */
export function skillIndexFloor (ef: number): number {
  return Math.ceil(SCAN_AGENTS_PER_EF * SKILL_INDEX_COST * ef)
}

export interface SearchPlan {
  /** HNSW candidate list per shard. */
  ef: number
  /** Scan exactly when the rarest skill has at most this many agents (default: the cost model). */
  flatScanLimit?: number
  /** Scan exactly whatever the filter (checks, measurements). */
  exact: boolean
}

/**
 * Which way a search went; `post-filter-missed` is a post-filter that fell back to in-filter,
 * `skill-index-missed` a sub-index post-filter that fell back to in-filter on the sub-index.
 */
export type PlanName = 'hnsw' | 'scan' | 'skill-index' | 'skill-index-missed' | 'post-filter' | 'post-filter-missed' | 'in-filter'

/** The n most similar agents of the group that pass the filter (unsorted), by the cheapest plan. */
export function findCandidates (group: Group, point: number[], filter: SearchFilter | undefined, n: number, plan: SearchPlan): { found: Found, plan: PlanName } {
  const accept = admits(filter)
  let rarest: ReadonlySet<Entry> | undefined
  let rarestSkill = ''
  let indexed: SkillIndex | undefined
  for (const skill of filter?.skills ?? []) {
    const key = skill.toLowerCase()
    const posting = group.postings.get(key)
    if (posting === undefined) return { found: [], plan: 'scan' }
    if (rarest === undefined || posting.size < rarest.size) {
      rarest = posting
      rarestSkill = key
    }
    const sub = group.skillIndexes.get(key)
    if (sub !== undefined && (indexed === undefined || sub.live < indexed.live)) indexed = sub
  }
  if (plan.exact) return { found: flatScan(rarest ?? groupEntries(group), unit(point), accept, n), plan: 'scan' }
  if (filter === undefined) return { found: hnswSearch(group, point, undefined, n, plan.ef), plan: 'hnsw' }
  // The share of agents holding the rarest skill bounds the filter's selectivity from above;
  // other fields (policy, schema, availability) are usually broad and are not estimated.
  const pool = rarest?.size ?? group.live
  let wide = Math.max(plan.ef, Math.ceil(POST_FILTER_MARGIN * n * group.live / Math.max(pool, 1)))
  // The sub-index of the rarest indexed skill: the filter passes at most pool / members of it.
  const subWide = indexed === undefined ? Infinity : Math.ceil(POST_FILTER_MARGIN * n * indexed.live / Math.max(pool, 1))
  const cheapest = Math.min(wide, POST_FILTER_MAX * plan.ef, SKILL_INDEX_COST * Math.max(plan.ef, subWide))
  const scan = plan.flatScanLimit !== undefined ? pool <= plan.flatScanLimit : pool <= SCAN_AGENTS_PER_EF * cheapest
  if (rarest !== undefined && scan) return { found: flatScan(rarest, unit(point), accept, n), plan: 'scan' }
  if (indexed !== undefined) return viaSkillIndex(indexed, point, accept, n, plan.ef, subWide)
  let tried = false
  // Each post-filter search, and whether its first attempt missed, tells the sub-index planner
  // which broad skills the main index serves badly (`skill-indexes.ts`, by misses).
  const report = (missed: boolean): void => { if (rarest !== undefined) group.skillIndexes.searched(rarestSkill, missed) }
  for (let attempt = 0; attempt < 2 && wide <= POST_FILTER_MAX * plan.ef; attempt++) {
    tried = true
    const near = hnswSearch(group, point, undefined, wide, wide)
    if (group.shards.length > 1) near.sort((a, b) => b.similarity - a.similarity)
    // Nearest first, stopping at n: each check reads the agent's record (a cache miss apiece).
    const passing: Found = []
    for (const hit of near) {
      if (accept(hit.entry) && passing.push(hit) === n) {
        if (attempt === 0) report(false)
        return { found: passing, plan: 'post-filter' }
      }
    }
    if (attempt === 0) report(true)
    if (passing.length === 0) break
    // Widen by the share that passed here: the filter's selectivity near the query.
    wide = Math.ceil(2 * n * wide / passing.length)
  }
  if (!tried) report(true)
  return { found: hnswSearch(group, point, accept, n, plan.ef, rarest), plan: tried ? 'post-filter-missed' : 'in-filter' }
}

/**
 * Post-filter over a skill's sub-index: its nearest `wide` members, then the rest of the filter,
 * widened once by the share that passed; if that still falls short (or the rest of the filter is
 * too narrow to post-filter), the filter goes inside the search of the (small) sub-index.
 */
function viaSkillIndex (sub: SkillIndex, point: number[], accept: (entry: Entry) => boolean, n: number, ef: number, wide: number): { found: Found, plan: PlanName } {
  wide = Math.max(n, wide)
  let tried = false
  for (let attempt = 0; attempt < 2 && wide <= POST_FILTER_MAX * ef; attempt++) {
    tried = true
    const near = knn(sub, point, Math.min(wide, sub.capacity), Math.max(ef, wide), undefined, [])
    const passing: Found = []
    for (const hit of near) if (accept(hit.entry) && passing.push(hit) === n) return { found: passing, plan: 'skill-index' }
    // Every member was seen: fewer than n agents pass at all.
    if (near.length >= sub.live) return { found: passing, plan: 'skill-index' }
    if (passing.length === 0) break
    wide = Math.ceil(2 * n * wide / passing.length)
  }
  return { found: knn(sub, point, n, ef, accept, []), plan: tried ? 'skill-index-missed' : 'skill-index' }
}

/**
 * Every shard of the group, with the filter inside the HNSW search; unsorted across shards.
 * Without a filter no callback is passed (each costs a native-to-JS call): removed labels are
 * marked deleted in hnswlib, and a label without a live entry is dropped from the results anyway.
 * With `holders` (the agents of the filter's rarest skill) the callback first reads one byte per
 * label, before the agent's record (a cache miss and a few set lookups apiece): after a missed
 * post-filter at 100k this took the in-filter search from 16.7 to 13.5 ms p50. The rest is the
 * walk itself, ~1/selectivity nodes per match near the query.
 */
export function hnswSearch (group: Group, point: number[], accept: ((entry: Entry) => boolean) | undefined, n: number, ef: number, holders?: ReadonlySet<Entry>): Found {
  const found: Found = []
  for (const shard of group.shards) {
    if (shard.live === 0) continue
    knn(shard, point, n, ef, accept, found, accept === undefined || holders === undefined ? undefined : labelMask(shard, holders))
  }
  return found
}

/** A byte per label of the shard: 1 for the labels of `holders`. */
function labelMask (shard: Shard, holders: ReadonlySet<Entry>): Uint8Array {
  const mask = new Uint8Array(shard.slots)
  for (const entry of holders) if (entry.shard === shard) mask[entry.label] = 1
  return mask
}

/** What `knn` searches: a main shard or a skill sub-index. */
interface Graph {
  readonly hnsw: Hnsw
  readonly entries: ReadonlyArray<Entry | undefined>
  readonly capacity: number
  setEf: (ef: number) => void
}

/** The n nearest live entries of one graph, nearest first, appended to `found`. */
function knn (graph: Graph, point: number[], n: number, ef: number, accept: ((entry: Entry) => boolean) | undefined, found: Found, mask?: Uint8Array): Found {
  graph.setEf(ef)
  const entries = graph.entries
  const k = Math.min(n, graph.capacity)
  if (accept === undefined) return collect(graph.hnsw.searchKnn(point, k), entries, found)
  // An exception thrown inside hnswlib's filter callback aborts the process (hnswlib-node
  // 3.0), so a throwing `available` is caught here and rethrown once the search returns.
  let failed = false
  let failure: unknown
  const result = graph.hnsw.searchKnn(point, k, label => {
    if (mask !== undefined && mask[label] !== 1) return false
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
  return collect(result, entries, found)
}

function collect (result: { neighbors: number[], distances: number[] }, entries: ReadonlyArray<Entry | undefined>, found: Found): Found {
  for (let i = 0; i < result.neighbors.length; i++) {
    const entry = entries[result.neighbors[i]!]
    if (entry !== undefined) found.push({ entry, similarity: 1 - result.distances[i]! })
  }
  return found
}

export function * groupEntries (group: Group): Iterable<Entry> {
  for (const shard of group.shards) for (const entry of shard.entries) if (entry !== undefined) yield entry
}

/**
 * Exact: the n most similar of `pool` that pass the filter. The dot product comes first and the
 * filter only for an agent that would enter the top n: the filter reads the agent's record, a
 * cache miss apiece, and the pool's own skill already holds. Four sums let V8 overlap the
 * multiply-adds (~20% faster than one).
 */
export function flatScan (pool: Iterable<Entry>, q: Float32Array, accept: (entry: Entry) => boolean, n: number): Found {
  const top: Found = []
  const dims = q.length
  for (const entry of pool) {
    const v = entry.shard.vectors
    const base = entry.label * dims
    let s0 = 0
    let s1 = 0
    let s2 = 0
    let s3 = 0
    let d = 0
    for (; d + 3 < dims; d += 4) {
      s0 += q[d]! * v[base + d]!
      s1 += q[d + 1]! * v[base + d + 1]!
      s2 += q[d + 2]! * v[base + d + 2]!
      s3 += q[d + 3]! * v[base + d + 3]!
    }
    for (; d < dims; d++) s0 += q[d]! * v[base + d]!
    const similarity = s0 + s1 + s2 + s3
    if (top.length === n && similarity <= top[n - 1]!.similarity) continue
    if (!accept(entry)) continue
    let at = top.length < n ? top.length : n - 1
    if (top.length < n) top.push({ entry, similarity })
    while (at > 0 && top[at - 1]!.similarity < similarity) { top[at] = top[at - 1]!; at-- }
    top[at] = { entry, similarity }
  }
  return top
}
