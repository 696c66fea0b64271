/**
 * Which skills of a shard group get a sub-index (`skill-index.ts`), building them without
 * stalling searches or upserts, and keeping them equal to the group as agents come, change and go.
 *
 * Two rules choose, both deterministic for a given sequence of updates and searches:
 *
 * By size (`chooseSkills`):
 * - A skill qualifies when at least `minAgents` agents hold it (below that an exact scan of them
 *   is cheaper than any HNSW search: the planner's cost model, `search.ts`) and at most
 *   `maxShare` of the group's agents (above that a post-filter of the main index usually finds
 *   enough agents at its normal ef).
 * - Budget: the sub-indexes together cost at most `budget` × the group's live agents in members,
 *   counting each sub-index's fixed memory as members too (`skill-index.ts`: ~1,250 members'
 *   worth at 384 dims). A member costs ~2.1 KB at 384 dims, 40% of what an agent costs the main
 *   index (5.4 KB resident at 100k: graph, vector copy, record), so the default 0.5 adds at most
 *   ~20% (measured at 100k: +80 MiB on 525 MiB).
 * - Smallest skills first: a post-filter's candidate list grows as 1/share, so the rarest skills
 *   in the band are the ones the main index serves worst, and each slot covers the most skills.
 * - Hysteresis: a skill keeps its sub-index while it holds between minAgents/2 and 2 × maxShare,
 *   and is ranked at half its size, so a skill drifting across a bound or a near tie with a
 *   newcomer does not rebuild a graph at every replan.
 *
 * By misses (`chooseByMisses`): a broad skill is usually served well by a post-filter, but not
 * for queries that point where few of its agents are (at 100k, 2–5% of searches for a skill of
 * ~25%: the 200 nearest held 1–17 of its agents). Those searches widen or fall back to a filtered
 * search, 5–20 ms against ~0.6 ms, and make the p99. The planner reports each post-filter search
 * and whether its first attempt fell short (`searched`). A skill with at least MISS_MIN such
 * misses, MISS_RATE of its searches, gets a sub-index from its own budget (`missBudget` members
 * per live agent), most misses per member first, if it holds at most MISS_MAX_SHARE of the
 * group. Once built, its searches go through it and no longer miss, so they cannot judge it
 * again: it stays while it fits (ranked first) and the skill holds at least minAgents / 2.
 *
 * A replan runs once the group has seen max(64, a quarter of its size at the last replan)
 * inserts, removals and skill changes, when a search crossed the miss threshold (at the next
 * `maintain`), and when a version 1 index (saved before sub-indexes) loads; a later version loads
 * the sub-indexes it saved, as they were. A replan only decides: a new sub-index is built by
 * `maintain`, a slice at a time (a whole one takes seconds: ~1 ms per member at efConstruction
 * 200), and serves searches once complete. From the moment it is chosen it follows every change
 * at once (add, move, delete), so a search never sees a stale one.
 */
import type { Entry, Group } from './shard.ts'
import { SKILL_INDEX_FIXED_BYTES, SkillIndex, skillIndexMemberBytes } from './skill-index.ts'

export interface SkillIndexOptions {
  /** Fewest agents holding a skill for it to get a sub-index. */
  minAgents: number
  /** Largest share of the group's agents holding a skill for it to get a sub-index by size. */
  maxShare: number
  /** Sub-index members, skills chosen by size together, per live agent of the group (0: none). */
  budget: number
  /** Sub-index members, skills chosen by misses together, per live agent of the group (0: none). */
  missBudget: number
}

const REPLAN_MIN = 64
/** Fewest post-filter misses for a skill to get a sub-index by misses… */
export const MISS_MIN = 8
/** …and the least share of its post-filter searches that missed (a p99 notices 1%). */
export const MISS_RATE = 1 / 100
/** A skill's counts halve once it has seen this many searches: recent traffic weighs most, and they stay bounded. */
const MISS_WINDOW = 4096
/** Largest share of the group a skill chosen by misses may hold: past half, a sub-index is nearly a copy. */
const MISS_MAX_SHARE = 1 / 2

/** Post-filter searches and misses of one skill. */
export interface MissCount { searches: number, misses: number }

/** A sub-index being built: `queue` is the skill's agents when it was chosen, `next` the first not yet added. */
interface Build { sub: SkillIndex, queue: Entry[], next: number }

export class SkillIndexes {
  readonly #options: SkillIndexOptions
  readonly #dims: number
  readonly #ready = new Map<string, SkillIndex>()
  readonly #building = new Map<string, Build>()
  /** Skills whose sub-index (ready or building) was chosen by misses. */
  readonly #byMisses = new Set<string>()
  readonly #misses = new Map<string, MissCount>()
  /** A skill without a sub-index crossed the miss threshold since the last replan. */
  #missDue = false
  #changes = 0
  #plannedAt = 0

  constructor (dims: number, options: SkillIndexOptions) {
    this.#dims = dims
    this.#options = options
  }

  /** The complete sub-index of a lower-cased skill, if it has one. */
  get (skill: string): SkillIndex | undefined { return this.#ready.get(skill) }

  all (): SkillIndex[] { return [...this.#ready.values()] }

  /** Sub-indexes chosen but not complete: members added so far of how many to add. */
  builds (): Array<{ skill: string, added: number, queued: number, byMisses: boolean }> {
    return [...this.#building].map(([skill, b]) => ({ skill, added: b.sub.live, queued: b.queue.length, byMisses: this.#byMisses.has(skill) }))
  }

  chosenByMisses (skill: string): boolean { return this.#byMisses.has(skill) }

  /** Whether a replan is due or a build unfinished: `maintain` has work. */
  get pending (): boolean { return this.#missDue || this.#building.size > 0 }

  /** A new agent in the group. */
  added (entry: Entry, group: Group): void {
    for (const skill of entry.skills) this.#sub(skill)?.add(entry)
    this.#changed(group)
  }

  removed (entry: Entry, group: Group): void {
    for (const skill of entry.skills) this.#sub(skill)?.delete(entry)
    this.#changed(group)
  }

  /** The agent's vector changed (same entry, same main label). */
  moved (entry: Entry): void {
    for (const skill of entry.skills) this.#sub(skill)?.move(entry)
  }

  /** The agent's skills changed from `before` to `entry.skills`. */
  retagged (entry: Entry, before: ReadonlySet<string>, group: Group): void {
    let changed = false
    for (const skill of before) {
      if (entry.skills.has(skill)) continue
      this.#sub(skill)?.delete(entry)
      changed = true
    }
    for (const skill of entry.skills) {
      if (before.has(skill)) continue
      this.#sub(skill)?.add(entry)
      changed = true
    }
    if (changed) this.#changed(group)
  }

  /**
   * A post-filter search whose rarest required skill was `skill` (one without a complete
   * sub-index); `missed`: its first attempt found fewer than asked.
   */
  searched (skill: string, missed: boolean): void {
    let count = this.#misses.get(skill)
    if (count === undefined) this.#misses.set(skill, count = { searches: 0, misses: 0 })
    const before = missesQualify(count)
    count.searches++
    if (missed) count.misses++
    if (count.searches >= MISS_WINDOW) {
      count.searches /= 2
      count.misses /= 2
    }
    // Only a crossing asks for a replan: a skill that qualified and did not fit the budget waits
    // for the next replan by changes, instead of asking at every miss.
    if (!before && missesQualify(count) && this.#options.missBudget > 0 && !this.#building.has(skill)) this.#missDue = true
  }

  /** A sub-index read from disk, with its members already restored. */
  adopt (sub: SkillIndex, byMisses: boolean): void {
    this.#ready.set(sub.skill, sub)
    if (byMisses) this.#byMisses.add(sub.skill)
  }

  /**
   * After a load: a sub-index that was being built when the index was saved starts again, if
   * its skill still exists and it fits both budgets beside the others (the file may be damaged
   * or hostile: a list of every skill must not allocate a graph for each).
   */
  resume (skill: string, byMisses: boolean, group: Group): void {
    const posting = group.postings.get(skill)
    if (posting === undefined || this.#ready.has(skill) || this.#building.has(skill)) return
    let members = posting.size
    for (const sub of this.#ready.values()) members += sub.live
    for (const build of this.#building.values()) members += build.queue.length
    if (members > (this.#options.budget + this.#options.missBudget) * group.live) return
    this.#startBuild(skill, group, byMisses)
    if (byMisses) this.#byMisses.add(skill)
  }

  /** Chooses the skills by the rules above and drops the others' sub-indexes; `maintain` builds the new ones. */
  replan (group: Group): void {
    const sizes = new Map<string, number>()
    for (const [skill, posting] of group.postings) sizes.set(skill, posting.size)
    // Counts of skills no agent holds any more go: the map stays as large as the postings at most.
    for (const skill of this.#misses.keys()) if (!sizes.has(skill)) this.#misses.delete(skill)
    const overhead = Math.ceil(SKILL_INDEX_FIXED_BYTES / skillIndexMemberBytes(this.#dims))
    const current = new Set([...this.#ready.keys(), ...this.#building.keys()])
    const keptBySize = new Set([...current].filter(skill => !this.#byMisses.has(skill)))
    const bySize = chooseSkills(sizes, group.live, keptBySize, { ...this.#options, overhead })
    const byMisses = chooseByMisses(this.#misses, sizes, group.live, this.#byMisses, bySize, { ...this.#options, overhead })
    for (const skill of current) {
      if (bySize.has(skill) || byMisses.has(skill)) continue
      const sub = this.#ready.get(skill) ?? this.#building.get(skill)!.sub
      sub.release()
      this.#ready.delete(skill)
      this.#building.delete(skill)
    }
    for (const skill of [...bySize, ...byMisses]) {
      if (!this.#ready.has(skill) && !this.#building.has(skill)) this.#startBuild(skill, group, byMisses.has(skill))
    }
    this.#byMisses.clear()
    for (const skill of byMisses) {
      this.#byMisses.add(skill)
      // Its searches no longer post-filter; its old counts would only weigh on a later plan.
      this.#misses.delete(skill)
    }
    this.#missDue = false
    this.#changes = 0
    this.#plannedAt = group.live
  }

  /**
   * Background work until `clock()` passes `deadline`: a replan if searches asked for one, then
   * builds, one member at a time, at least one per call (a slice shorter than one insert still
   * makes progress). Returns whether work remains.
   */
  maintain (group: Group, deadline: number, clock: () => number): boolean {
    if (this.#missDue) this.replan(group)
    let steps = 0
    for (const [skill, build] of this.#building) {
      const { sub, queue } = build
      while (build.next < queue.length) {
        if (steps++ > 0 && clock() >= deadline) return true
        const entry = queue[build.next++]!
        // Removed, or no longer of the skill, since it was queued (a newcomer was added at once).
        if (entry.shard.entries[entry.label] === entry && entry.skills.has(skill)) sub.add(entry)
      }
      this.#building.delete(skill)
      this.#ready.set(skill, sub)
    }
    return this.pending
  }

  /** The sub-index a change must reach: complete or being built. */
  #sub (skill: string): SkillIndex | undefined {
    return this.#ready.get(skill) ?? this.#building.get(skill)?.sub
  }

  #startBuild (skill: string, group: Group, byMisses: boolean): void {
    const posting = group.postings.get(skill)!
    this.#building.set(skill, { sub: SkillIndex.create(skill, this.#dims, Math.max(64, posting.size), byMisses), queue: [...posting], next: 0 })
  }

  #changed (group: Group): void {
    if (++this.#changes >= Math.max(REPLAN_MIN, this.#plannedAt / 4)) this.replan(group)
  }
}

function missesQualify (count: MissCount): boolean {
  return count.misses >= MISS_MIN && count.misses >= MISS_RATE * count.searches
}

/**
 * The rule by size: which skills get a sub-index, given how many agents hold each (`sizes`), the
 * group's live agents and the skills that have one now (`kept`). `overhead`: a sub-index's fixed
 * memory, in members.
 */
export function chooseSkills (sizes: ReadonlyMap<string, number>, live: number, kept: ReadonlySet<string>, options: Omit<SkillIndexOptions, 'missBudget'> & { overhead: number }): Set<string> {
  const { minAgents, maxShare, budget, overhead } = options
  const candidates: Array<{ skill: string, size: number, rank: number }> = []
  for (const [skill, size] of sizes) {
    const isKept = kept.has(skill)
    const fits = isKept ? size >= minAgents / 2 && size <= 2 * maxShare * live : size >= minAgents && size <= maxShare * live
    if (fits) candidates.push({ skill, size, rank: isKept ? size / 2 : size })
  }
  candidates.sort((a, b) => a.rank - b.rank || compare(a.skill, b.skill))
  return fill(candidates, budget * live, overhead)
}

/**
 * The rule by misses: skills not chosen by size (`bySize`) whose post-filter searches missed
 * enough (`counts`), or that already have a sub-index chosen so (`kept`: first, while they hold at
 * least minAgents / 2), most misses per member first, within `missBudget`.
 */
export function chooseByMisses (counts: ReadonlyMap<string, MissCount>, sizes: ReadonlyMap<string, number>, live: number, kept: ReadonlySet<string>, bySize: ReadonlySet<string>, options: Pick<SkillIndexOptions, 'minAgents' | 'missBudget'> & { overhead: number }): Set<string> {
  const { minAgents, missBudget, overhead } = options
  const candidates: Array<{ skill: string, size: number, rank: number }> = []
  for (const skill of new Set([...kept, ...counts.keys()])) {
    const size = sizes.get(skill)
    if (size === undefined || bySize.has(skill)) continue
    if (kept.has(skill)) {
      if (size >= minAgents / 2) candidates.push({ skill, size, rank: -Infinity })
      continue
    }
    const count = counts.get(skill)!
    if (size >= minAgents && size <= MISS_MAX_SHARE * live && missesQualify(count)) candidates.push({ skill, size, rank: -count.misses / size })
  }
  candidates.sort((a, b) => a.rank - b.rank || compare(a.skill, b.skill))
  return fill(candidates, missBudget * live, overhead)
}

/** The candidates in order, each that still fits in `members` (its size plus `overhead`). */
function fill (candidates: ReadonlyArray<{ skill: string, size: number }>, members: number, overhead: number): Set<string> {
  const chosen = new Set<string>()
  let used = 0
  for (const c of candidates) {
    if (used + c.size + overhead > members) continue
    chosen.add(c.skill)
    used += c.size + overhead
  }
  return chosen
}

function compare (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
