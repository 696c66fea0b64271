/**
 * A per-skill sub-index: an HNSW graph over only the agents that hold one skill, beside the
 * group's main shards. A query that requires the skill searches this small graph instead of
 * post-filtering the whole group (whose candidate list must grow as 1/share) or scanning the
 * skill's agents in JS (`skill-indexes.ts` says which skills get one, `search.ts` when it is used).
 *
 * Same label scheme as a shard: labels 0, 1, 2, …, a removed agent's label is marked deleted and
 * reused by the next one through hnswlib's update path, capacity doubles with `resizeIndex`. The
 * vectors come from the main shard's unit-vector copy, so the two never disagree.
 */
import { hnswlib } from './hnswlib.ts'
import type { Entry, Hnsw } from './shard.ts'

/**
 * Graph degree and build-time candidate list of a sub-index. For a skill chosen by size, with
 * 1–12k agents × 384 dims, M 16 with efConstruction 40 recalls 0.987–1.0 of the top 20 at ef 150
 * and builds in 0.6× the time of efConstruction 100 (0.991–1.0; M 32 recalls the same for the
 * same time and 8% more memory). A larger graph, or one chosen by misses, is built with the main
 * index's default 200: the queries a miss sends there point away from most of its agents, where
 * a sparse graph loses them. Four area skills of the route bench (11–47k agents) forced into
 * sub-indexes recalled 0.949 at efConstruction 40 and 0.983 at 200; a 1,800-agent skill far from
 * its queries (the test) 0.93 and 0.95+.
 */
const SKILL_INDEX_M = 16
const SMALL_EF_CONSTRUCTION = 40
const LARGE_EF_CONSTRUCTION = 200
const SMALL_MEMBERS = 12_000

function skillIndexEfConstruction (members: number, byMisses: boolean): number {
  return members <= SMALL_MEMBERS && !byMisses ? SMALL_EF_CONSTRUCTION : LARGE_EF_CONSTRUCTION
}

/**
 * Memory of a sub-index (hnswlib-node 3.0, measured): ~2.5 MiB however small (hnswlib allocates
 * 65,536 label locks per index), plus per member its vector, its links and bookkeeping: 2072 B
 * at 384 dims.
 */
export const SKILL_INDEX_FIXED_BYTES = 2.5 * 2 ** 20
export function skillIndexMemberBytes (dims: number): number {
  return 4 * dims + 536
}

export class SkillIndex {
  readonly skill: string
  readonly hnsw: Hnsw
  /** Entry per label; undefined for a free (deleted) label. */
  readonly entries: Array<Entry | undefined> = []
  readonly free: number[] = []
  slots = 0
  capacity: number
  /** Each member's label here (its label in the main shard is another one). */
  readonly #labels = new Map<Entry, number>()
  #ef = 0

  constructor (skill: string, hnsw: Hnsw, capacity: number) {
    this.skill = skill
    this.hnsw = hnsw
    this.capacity = capacity
  }

  /** An empty sub-index with room for `capacity` agents (it grows by doubling), built for that many. */
  static create (skill: string, dims: number, capacity: number, byMisses: boolean): SkillIndex {
    const hnsw = new hnswlib.HierarchicalNSW('cosine', dims)
    // A fixed seed keeps builds reproducible, as for the shards.
    hnsw.initIndex(capacity, SKILL_INDEX_M, skillIndexEfConstruction(capacity, byMisses), 7)
    return new SkillIndex(skill, hnsw, capacity)
  }

  get live (): number { return this.#labels.size }

  setEf (ef: number): void {
    if (ef !== this.#ef) this.hnsw.setEf(this.#ef = ef)
  }

  add (entry: Entry): void {
    if (this.#labels.has(entry)) return
    let label = this.free.pop()
    if (label === undefined) {
      if (this.slots >= this.capacity) {
        this.capacity *= 2
        this.hnsw.resizeIndex(this.capacity)
      }
      label = this.slots++
    }
    // A free label is a deleted one: addPoint unmarks it and moves the point (hnswlib's update path).
    this.hnsw.addPoint(pointOf(entry), label)
    this.entries[label] = entry
    this.#labels.set(entry, label)
  }

  /** The member's vector changed in the main shard: move its point here too. */
  move (entry: Entry): void {
    const label = this.#labels.get(entry)
    if (label !== undefined) this.hnsw.addPoint(pointOf(entry), label)
  }

  delete (entry: Entry): void {
    const label = this.#labels.get(entry)
    if (label === undefined) return
    this.hnsw.markDelete(label)
    this.entries[label] = undefined
    this.free.push(label)
    this.#labels.delete(entry)
  }

  /**
   * Frees the graph's points now: hnswlib-node frees an index only in a finalizer, after a major
   * GC and a turn of the event loop, so a dropped sub-index would hold its memory until then.
   * Re-initialising to one slot frees them at once; the empty index's fixed 2.5 MiB waits.
   */
  release (): void {
    this.hnsw.initIndex(1, SKILL_INDEX_M, SMALL_EF_CONSTRUCTION, 7)
    this.entries.length = 0
    this.free.length = 0
    this.#labels.clear()
    this.slots = 0
    this.capacity = 1
  }

  /** After a load: label → entry as saved, the graph already holds the points. */
  restoreMember (label: number, entry: Entry): void {
    this.entries[label] = entry
    this.#labels.set(entry, label)
  }
}

/** hnswlib takes plain arrays: the member's unit vector, read from its main shard. */
function pointOf (entry: Entry): number[] {
  return Array.from(entry.shard.vector(entry.label))
}
