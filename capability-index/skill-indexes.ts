/**
 * Which skills of a shard group get a sub-index (`skill-index.ts`), and keeping those sub-indexes
 * equal to the group as agents come, change and go.
 *
 * The rule (`chooseSkills`), deterministic for a given sequence of updates:
 * - A skill qualifies when at least `minAgents` agents hold it (below that an exact scan of them
 *   is cheaper than any HNSW search: the planner's cost model, `search.ts`) and at most
 *   `maxShare` of the group's agents (above that a post-filter of the main index already finds
 *   enough agents at its normal ef, so a sub-index would save little).
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
 * A replan runs once the group has seen max(64, a quarter of its size at the last replan)
 * inserts, removals and skill changes, and when a version 1 index (saved before sub-indexes)
 * loads; a later version loads the sub-indexes it saved, as they were. Between replans the
 * chosen sub-indexes follow every change at once (add, move, delete), so a search never sees a
 * stale one.
 */
import type { Entry, Group } from './shard.ts'
import { SKILL_INDEX_FIXED_BYTES, SkillIndex, skillIndexMemberBytes } from './skill-index.ts'

export interface SkillIndexOptions {
  /** Fewest agents holding a skill for it to get a sub-index. */
  minAgents: number
  /** Largest share of the group's agents holding a skill for it to get a sub-index. */
  maxShare: number
  /** Sub-index members, all skills together, per live agent of the group (0: none). */
  budget: number
}

const REPLAN_MIN = 64

export class SkillIndexes {
  readonly #options: SkillIndexOptions
  readonly #dims: number
  readonly #bySkill = new Map<string, SkillIndex>()
  #changes = 0
  #plannedAt = 0

  constructor (dims: number, options: SkillIndexOptions) {
    this.#dims = dims
    this.#options = options
  }

  /** The sub-index of a lower-cased skill, if it has one. */
  get (skill: string): SkillIndex | undefined { return this.#bySkill.get(skill) }

  all (): SkillIndex[] { return [...this.#bySkill.values()] }

  /** A new agent in the group. */
  added (entry: Entry, group: Group): void {
    for (const skill of entry.skills) this.#bySkill.get(skill)?.add(entry)
    this.#changed(group)
  }

  removed (entry: Entry, group: Group): void {
    for (const skill of entry.skills) this.#bySkill.get(skill)?.delete(entry)
    this.#changed(group)
  }

  /** The agent's vector changed (same entry, same main label). */
  moved (entry: Entry): void {
    for (const skill of entry.skills) this.#bySkill.get(skill)?.move(entry)
  }

  /** The agent's skills changed from `before` to `entry.skills`. */
  retagged (entry: Entry, before: ReadonlySet<string>, group: Group): void {
    let changed = false
    for (const skill of before) {
      if (entry.skills.has(skill)) continue
      this.#bySkill.get(skill)?.delete(entry)
      changed = true
    }
    for (const skill of entry.skills) {
      if (before.has(skill)) continue
      this.#bySkill.get(skill)?.add(entry)
      changed = true
    }
    if (changed) this.#changed(group)
  }

  /** A sub-index read from disk, with its members already restored. */
  adopt (sub: SkillIndex): void {
    this.#bySkill.set(sub.skill, sub)
  }

  /** Chooses the skills by the rule above, drops the others' sub-indexes and builds the new ones. */
  replan (group: Group): void {
    const sizes = new Map<string, number>()
    for (const [skill, posting] of group.postings) sizes.set(skill, posting.size)
    const overhead = Math.ceil(SKILL_INDEX_FIXED_BYTES / skillIndexMemberBytes(this.#dims))
    const chosen = chooseSkills(sizes, group.live, new Set(this.#bySkill.keys()), { ...this.#options, overhead })
    for (const [skill, sub] of this.#bySkill) {
      if (chosen.has(skill)) continue
      sub.release()
      this.#bySkill.delete(skill)
    }
    for (const skill of chosen) {
      if (this.#bySkill.has(skill)) continue
      const posting = group.postings.get(skill)!
      const sub = SkillIndex.create(skill, this.#dims, Math.max(64, posting.size))
      for (const entry of posting) sub.add(entry)
      this.#bySkill.set(skill, sub)
    }
    this.#changes = 0
    this.#plannedAt = group.live
  }

  #changed (group: Group): void {
    if (++this.#changes >= Math.max(REPLAN_MIN, this.#plannedAt / 4)) this.replan(group)
  }
}

/**
 * The rule: which skills get a sub-index, given how many agents hold each (`sizes`), the group's
 * live agents and the skills that have one now (`kept`). `overhead`: a sub-index's fixed memory,
 * in members.
 */
export function chooseSkills (sizes: ReadonlyMap<string, number>, live: number, kept: ReadonlySet<string>, options: SkillIndexOptions & { overhead: number }): Set<string> {
  const { minAgents, maxShare, budget, overhead } = options
  const candidates: Array<{ skill: string, size: number, rank: number }> = []
  for (const [skill, size] of sizes) {
    const isKept = kept.has(skill)
    const fits = isKept ? size >= minAgents / 2 && size <= 2 * maxShare * live : size >= minAgents && size <= maxShare * live
    if (fits) candidates.push({ skill, size, rank: isKept ? size / 2 : size })
  }
  candidates.sort((a, b) => a.rank - b.rank || (a.skill < b.skill ? -1 : a.skill > b.skill ? 1 : 0))
  const chosen = new Set<string>()
  let used = 0
  for (const c of candidates) {
    if (used + c.size + overhead > budget * live) continue
    chosen.add(c.skill)
    used += c.size + overhead
  }
  return chosen
}
