/**
 * The semantic index over the VCVs a peer has verified: HNSW (hnswlib-node, cosine space) shards
 * with the record fields the router filters on, kept beside them in a JS table keyed by label.
 *
 * Shards: one group per embedding model id, so a vector of model X is never compared with one of
 * model Y. Inside a group a shard holds at most `maxShardSize` slots; new agents go to the first
 * shard with a free slot, else the last shard, else a new one. Partitioning by insertion rather
 * than by a hash of the agent id means a shard never has to be rebalanced (and so rebuilt) when
 * the group grows, and nothing is lost: a semantic query cannot skip shards whatever the key, so
 * every query fans out over all of the group's shards and merges.
 *
 * Labels: each shard hands out labels 0, 1, 2, ... and never more than it has slots. A removed
 * agent's label is marked deleted and put on the shard's free list; the next new agent takes it
 * with a plain `addPoint(vector, label)`, which for a deleted label unmarks it and moves the point
 * in place (hnswlib's update path). The index is built without `allowReplaceDeleted`: that mode
 * recycles the slot of *some* deleted label and needs fresh labels, which in hnswlib-node are
 * uint32 and would wrap under endless churn. The label table in JS changes in the same synchronous
 * step, a filtered search admits only labels with a live entry, and every result is mapped
 * through that table (a label without a live entry is dropped), so a label in transit can never
 * surface. Memory stays bounded by the largest number of agents ever held.
 *
 * Filters: skills, policy, schema hash, availability and exclusions act before ranking, and k
 * results come back whenever k agents pass; `search.ts` plans how (post-filter, in-filter HNSW,
 * a skill's own sub-index, or an exact scan of a rare skill's agents). For that scan, to tell a
 * changed vector from an unchanged one, and to feed the sub-indexes, each shard also keeps its
 * unit vectors in a Float32Array (dims × 4 bytes per agent; reading hnswlib's copy costs ~40 µs).
 * The sub-indexes (`skill-indexes.ts`) change in the same synchronous step as the shards, and
 * `save` writes them beside the shards.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fsyncPath, IndexLoadError, readHnsw, writeFileAtomic, writeFileDurable, writeHnsw } from './files.ts'
import { hnswlib } from './hnswlib.ts'
import { findCandidates, type PlanName, skillIndexFloor } from './search.ts'
import { checkVector, type Entry, type Group, lowerSet, sameVector, Shard, unit } from './shard.ts'
import { SkillIndex } from './skill-index.ts'
import { SkillIndexes } from './skill-indexes.ts'
import type { CapabilityIndexOptions, IndexRecord, IndexStats, SearchHit, SearchQuery, StoredRecord } from './types.ts'

export type { CapabilityIndexOptions, IndexRecord, IndexStats, SearchFilter, SearchHit, SearchQuery, StoredRecord } from './types.ts'
export { IndexLoadError } from './files.ts'

/**
 * Bump on any change to the files `save` writes. 2 added the skill sub-indexes; a version 1
 * index still loads, and gets its sub-indexes built from its stored vectors.
 * Fields a reader may ignore do not bump it: version 2 later gained `byMisses` and
 * `skillIndexBuilds`, and an index without them loads as before.
 */
export const INDEX_FORMAT_VERSION = 2
const READABLE_VERSIONS = [1, 2]
const FORMAT = 'agentmesh-capability-index'
const META_FILE = 'capability-index.json'

interface Settings {
  dims: number
  model: string
  maxShardSize: number
  M: number
  efConstruction: number
  ef: number
  initialCapacity: number
  flatScanLimit?: number
  skillIndexMinAgents: number
  skillIndexMaxShare: number
  skillIndexBudget: number
  skillIndexMissBudget: number
}

export class CapabilityIndex {
  readonly dims: number
  readonly model: string
  readonly #settings: Settings
  readonly #groups = new Map<string, Group>()
  readonly #entries = new Map<string, Entry>()
  readonly #plans: Record<PlanName, number> = { hnsw: 0, scan: 0, 'skill-index': 0, 'skill-index-missed': 0, 'post-filter': 0, 'post-filter-missed': 0, 'in-filter': 0 }

  constructor (options: CapabilityIndexOptions) {
    const maxShardSize = options.maxShardSize ?? 200_000
    const ef = positiveInt(options.ef ?? 200, 'ef')
    this.#settings = {
      dims: positiveInt(options.dims, 'dims', 4096),
      model: nonEmpty(options.model, 'model'),
      maxShardSize: positiveInt(maxShardSize, 'maxShardSize'),
      M: positiveInt(options.M ?? 32, 'M', 256),
      efConstruction: positiveInt(options.efConstruction ?? 200, 'efConstruction'),
      ef,
      initialCapacity: Math.min(maxShardSize, positiveInt(options.initialCapacity ?? 1024, 'initialCapacity')),
      skillIndexMinAgents: positiveInt(options.skillIndexMinAgents ?? skillIndexFloor(ef), 'skillIndexMinAgents'),
      skillIndexMaxShare: fraction(options.skillIndexMaxShare ?? 1 / 6, 'skillIndexMaxShare', 1),
      skillIndexBudget: fraction(options.skillIndexBudget ?? 0.5, 'skillIndexBudget', 2 ** 20),
      skillIndexMissBudget: fraction(options.skillIndexMissBudget ?? 1.25, 'skillIndexMissBudget', 2 ** 20)
    }
    if (options.flatScanLimit !== undefined) {
      if (!Number.isInteger(options.flatScanLimit) || options.flatScanLimit < 0) throw new RangeError('flatScanLimit must be an integer >= 0')
      this.#settings.flatScanLimit = options.flatScanLimit
    }
    this.dims = this.#settings.dims
    this.model = this.#settings.model
  }

  get size (): number { return this.#entries.size }
  has (agent: string): boolean { return this.#entries.has(agent) }
  get (agent: string): StoredRecord | undefined { return this.#entries.get(agent)?.record }
  agents (): string[] { return [...this.#entries.keys()] }

  /** How many searches went each way since the index was made (see `search.ts`). */
  plans (): Readonly<Record<PlanName, number>> {
    return { ...this.#plans }
  }

  /**
   * Re-chooses now which skills have a sub-index (`skill-indexes.ts`) and builds them before it
   * returns (seconds at 100k). Choosing also happens by itself, every max(64, size / 4) changes
   * and after searches that missed, and `maintain` then builds in slices; call this after a bulk
   * change or a load to act at once. With `build` false it only chooses, and `maintain` builds.
   */
  planSkillIndexes (build = true): void {
    for (const group of this.#groups.values()) {
      group.skillIndexes.replan(group)
      if (build) group.skillIndexes.maintain(group, Infinity, () => 0)
    }
  }

  /**
   * Background work for about `ms` (default: until none is left): re-choosing sub-indexes when
   * searches asked for it, and building chosen ones a member at a time. A search uses a
   * sub-index only once it is complete. Returns whether work remains; a peer calls it on a timer
   * within its indexing CPU share (`IndexSync.maintain`).
   */
  maintain (ms = Infinity, clock: () => number = () => performance.now()): boolean {
    const deadline = clock() + ms
    let more = false
    for (const group of this.#groups.values()) {
      if (group.skillIndexes.pending) more = group.skillIndexes.maintain(group, deadline, clock) || more
    }
    return more
  }

  stats (): IndexStats {
    return {
      size: this.size,
      groups: [...this.#groups.values()].map(g => ({
        model: g.model,
        dims: g.dims,
        shards: g.shards.map(s => ({ live: s.live, slots: s.slots, capacity: s.capacity })),
        skillIndexes: g.skillIndexes.all().map(x => ({ skill: x.skill, live: x.live, slots: x.slots, capacity: x.capacity, byMisses: g.skillIndexes.chosenByMisses(x.skill) })),
        skillIndexBuilds: g.skillIndexes.builds()
      }))
    }
  }

  /**
   * Inserts a new agent or replaces an existing one. A replacement moves the point in place
   * (same shard, same label); an unchanged vector only updates the fields. Never rebuilds.
   */
  upsert (input: IndexRecord): void {
    const model = input.model ?? this.model
    const group = this.#groups.get(model)
    const dims = group?.dims ?? (model === this.model ? this.dims : input.vector.length)
    const vector = checkVector(input.vector, dims)
    const record = storedRecord(input, model)
    let entry = this.#entries.get(record.agent)
    if (entry !== undefined && entry.record.model !== model) {
      this.remove(record.agent)
      entry = undefined
    }
    if (entry === undefined) {
      const group = this.#group(model, dims)
      const shard = this.#shardForInsert(group)
      const label = shard.free.pop() ?? shard.slots++
      // A free label is a deleted one: addPoint unmarks it and moves the point (hnswlib's update path).
      shard.hnsw.addPoint(vector, label)
      shard.vector(label).set(unit(vector))
      entry = { record, shard, label, skills: lowerSet(record.skills), policy: new Set(record.policy) }
      shard.entries[label] = entry
      shard.live++
      group.live++
      this.#entries.set(record.agent, entry)
      this.#post(entry, true)
      group.skillIndexes.added(entry, group)
      return
    }
    const direction = unit(vector)
    const stored = entry.shard.vector(entry.label)
    if (!sameVector(stored, direction)) {
      entry.shard.hnsw.addPoint(vector, entry.label)
      stored.set(direction)
      this.#groupOf(entry).skillIndexes.moved(entry)
    }
    this.#setFields(entry, record)
  }

  /** Replaces the fields of an indexed agent and keeps its vector (a new version, same text). */
  updateFields (agent: string, fields: Omit<IndexRecord, 'agent' | 'vector' | 'model'>): void {
    const entry = this.#entries.get(agent)
    if (entry === undefined) throw new Error(`${agent} is not in the capability index`)
    this.#setFields(entry, storedRecord({ ...fields, agent, vector: [] }, entry.record.model))
  }

  /** Removes an agent (expiry, tombstone). Returns whether it was indexed. */
  remove (agent: string): boolean {
    const entry = this.#entries.get(agent)
    if (entry === undefined) return false
    const shard = entry.shard
    shard.hnsw.markDelete(entry.label)
    shard.entries[entry.label] = undefined
    shard.free.push(entry.label)
    shard.live--
    const group = this.#groupOf(entry)
    group.live--
    this.#post(entry, false)
    this.#entries.delete(agent)
    group.skillIndexes.removed(entry, group)
    return true
  }

  /**
   * The k best agents for a query vector. Filters run inside the HNSW search (so k results come
   * back whenever k agents pass), every shard of the model's group is searched and the results
   * merged. Ranking is two-stage: the `candidates` most similar agents (default 2k when a
   * costWeight is given), re-ranked by
   * score = similarity − costWeight × cost / (1 + cost). The penalty is bounded by costWeight
   * whatever the price, so costWeight reads as "similarity given up, at most, for a free agent",
   * and re-ranking only the nearest candidates keeps a cheap but unrelated agent from winning.
   */
  search (query: SearchQuery): SearchHit[] {
    const group = this.#groups.get(query.model ?? this.model)
    const k = query.k
    if (!Number.isInteger(k) || k < 0) throw new RangeError('k must be an integer >= 0')
    const costWeight = query.costWeight ?? 0
    if (!Number.isFinite(costWeight) || costWeight < 0) throw new RangeError('costWeight must be a finite number >= 0')
    const candidates = Math.max(k, query.candidates ?? (costWeight > 0 ? 2 * k : k))
    if (group === undefined || k === 0) return []
    const point = checkVector(query.vector, group.dims)
    const { found, plan } = findCandidates(group, point, query.filter, candidates, {
      ef: Math.max(this.#settings.ef, 2 * candidates),
      flatScanLimit: this.#settings.flatScanLimit,
      exact: query.exact === true
    })
    this.#plans[plan]++
    found.sort((a, b) => b.similarity - a.similarity)
    const hits: SearchHit[] = found.slice(0, candidates).map(({ entry, similarity }) => ({
      agent: entry.record.agent,
      similarity,
      score: similarity - costWeight * entry.record.cost / (1 + entry.record.cost),
      cost: entry.record.cost,
      record: entry.record
    }))
    hits.sort((a, b) => b.score - a.score || b.similarity - a.similarity || (a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0))
    return hits.slice(0, k)
  }

  /**
   * Writes every shard plus one metadata file into `dir` (which the index owns). Shard files get
   * a fresh generation in their names and the metadata, renamed into place last, is the commit:
   * a crash at any point leaves either the old or the new index readable, never a mix.
   */
  save (dir: string): void {
    mkdirSync(dir, { recursive: true })
    const generation = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`
    const keep = new Set<string>([META_FILE])
    const groups: MetaGroup[] = []
    let g = 0
    for (const group of this.#groups.values()) {
      const shards: MetaShard[] = []
      group.shards.forEach((shard, s) => {
        const file = `shard-${generation}-${g}-${s}.hnsw`
        writeHnsw(shard.hnsw, join(dir, file))
        keep.add(file)
        const vectorsFile = `shard-${generation}-${g}-${s}.f32`
        const slab = shard.vectors.subarray(0, shard.slots * group.dims)
        writeFileDurable(join(dir, vectorsFile), new Uint8Array(slab.buffer, slab.byteOffset, slab.byteLength))
        keep.add(vectorsFile)
        const records: MetaRecord[] = []
        shard.entries.forEach((entry, label) => {
          if (entry === undefined) return
          const r = entry.record
          records.push({ label, agent: r.agent, skills: [...r.skills], policy: [...r.policy], schemaHash: r.schemaHash, cost: r.cost, latencyMs: r.latencyMs, capacity: r.capacity })
        })
        shards.push({ file, vectorsFile, slots: shard.slots, capacity: shard.capacity, records })
      })
      // Members by (shard, label) of the main index: the records above carry the agents.
      const shardIndex = new Map(group.shards.map((shard, s) => [shard, s]))
      const skillIndexes = group.skillIndexes.all().map((sub, i): MetaSkillIndex => {
        const file = `shard-${generation}-${g}-skill-${i}.hnsw`
        writeHnsw(sub.hnsw, join(dir, file))
        keep.add(file)
        const members: number[] = []
        sub.entries.forEach((entry, label) => { if (entry !== undefined) members.push(label, shardIndex.get(entry.shard)!, entry.label) })
        return { skill: sub.skill, file, slots: sub.slots, members, ...group.skillIndexes.chosenByMisses(sub.skill) ? { byMisses: true } : {} }
      })
      // Builds in progress start again after a load (a partial graph is not worth a file).
      const builds = group.skillIndexes.builds().map(b => ({ skill: b.skill, byMisses: b.byMisses }))
      groups.push({ model: group.model, dims: group.dims, shards, skillIndexes, ...builds.length > 0 ? { skillIndexBuilds: builds } : {} })
      g++
    }
    const meta: Meta = { format: FORMAT, version: INDEX_FORMAT_VERSION, settings: this.#settings, groups }
    writeFileAtomic(join(dir, META_FILE), JSON.stringify(meta))
    fsyncPath(dir)
    for (const name of readdirSync(dir)) {
      if (!keep.has(name) && (/^shard-.*\.(hnsw|f32)$/.test(name) || name.startsWith(`${META_FILE}.tmp`))) unlinkSync(join(dir, name))
    }
  }

  /**
   * Reads an index written by `save`. Refuses, naming the reason, a missing directory or file, a
   * format version it does not know, and a model or dims other than `expected` (the peer's
   * embedder changed: its old vectors no longer compare, so the caller re-embeds instead).
   */
  static load (dir: string, expected: { model?: string, dims?: number, ef?: number } = {}): CapabilityIndex {
    if (!existsSync(dir)) throw new IndexLoadError(`no capability index at ${dir}: the directory does not exist`)
    const metaPath = join(dir, META_FILE)
    if (!existsSync(metaPath)) throw new IndexLoadError(`no capability index at ${dir}: ${META_FILE} is missing`)
    let meta: Meta
    try {
      meta = JSON.parse(readFileSync(metaPath, 'utf8')) as Meta
    } catch (err) {
      throw new IndexLoadError(`capability index ${metaPath} is not valid JSON: ${(err as Error).message}`)
    }
    if (meta?.format !== FORMAT || typeof meta.settings !== 'object' || !Array.isArray(meta.groups)) {
      throw new IndexLoadError(`${metaPath} is not a capability index file`)
    }
    if (!READABLE_VERSIONS.includes(meta.version)) {
      throw new IndexLoadError(`capability index in ${dir} has format version ${String(meta.version)}; this peer reads version ${READABLE_VERSIONS.join(' or ')}`)
    }
    const s = meta.settings
    if (expected.model !== undefined && s.model !== expected.model) {
      throw new IndexLoadError(`capability index in ${dir} was built with embedding model "${s.model}", but this peer embeds with "${expected.model}"; re-embed instead of loading it`)
    }
    if (expected.dims !== undefined && s.dims !== expected.dims) {
      throw new IndexLoadError(`capability index in ${dir} has ${s.dims}-dimensional vectors, but this peer's embedder gives ${expected.dims}; re-embed instead of loading it`)
    }
    const index = new CapabilityIndex({ ...s, ef: expected.ef ?? s.ef })
    try {
      index.#restore(dir, meta.groups)
    } catch (err) {
      if (err instanceof IndexLoadError) throw err
      throw new IndexLoadError(`capability index in ${dir} is damaged: ${(err as Error).message}`)
    }
    return index
  }

  #restore (dir: string, groups: MetaGroup[]): void {
    for (const mg of groups) {
      const group = this.#group(mg.model, mg.dims)
      for (const ms of mg.shards) {
        const hnsw = readHnsw(dir, ms.file, mg.dims, ms.slots, 'shard')
        const shard = new Shard(hnsw, mg.dims, hnsw.getMaxElements())
        shard.setEf(this.#settings.ef)
        shard.slots = ms.slots
        const vectorsPath = join(dir, ms.vectorsFile)
        if (!existsSync(vectorsPath)) throw new IndexLoadError(`capability index in ${dir} lists ${ms.vectorsFile}, which is missing`)
        const bytes = readFileSync(vectorsPath)
        if (bytes.byteLength !== ms.slots * mg.dims * 4) throw new IndexLoadError(`${ms.vectorsFile} has ${bytes.byteLength} bytes, expected ${ms.slots * mg.dims * 4}`)
        new Uint8Array(shard.vectors.buffer).set(bytes)
        for (const r of ms.records) {
          if (!Number.isInteger(r.label) || r.label < 0 || r.label >= ms.slots || shard.entries[r.label] !== undefined || this.#entries.has(r.agent)) {
            throw new IndexLoadError(`shard ${ms.file} has an inconsistent record for ${r.agent}`)
          }
          const record = storedRecord({ ...r, vector: [] }, mg.model)
          const entry: Entry = { record, shard, label: r.label, skills: lowerSet(record.skills), policy: new Set(record.policy) }
          shard.entries[r.label] = entry
          this.#entries.set(r.agent, entry)
          shard.live++
          group.live++
          this.#post(entry, true)
        }
        // Labels without a record were removed before the save: they are marked deleted in the file.
        for (let label = ms.slots - 1; label >= 0; label--) if (shard.entries[label] === undefined) shard.free.push(label)
        group.shards.push(shard)
      }
      // A version 1 index has none yet: they are built here from the stored vectors.
      if (mg.skillIndexes === undefined) {
        group.skillIndexes.replan(group)
        group.skillIndexes.maintain(group, Infinity, () => 0)
      }
      for (const mx of mg.skillIndexes ?? []) this.#restoreSkillIndex(dir, group, mx)
      for (const b of Array.isArray(mg.skillIndexBuilds) ? mg.skillIndexBuilds : []) {
        if (typeof b?.skill !== 'string') throw new IndexLoadError(`capability index in ${dir} lists a sub-index build without a skill`)
        group.skillIndexes.resume(b.skill, b.byMisses === true, group)
      }
    }
  }

  #restoreSkillIndex (dir: string, group: Group, mx: MetaSkillIndex): void {
    const hnsw = readHnsw(dir, mx.file, group.dims, mx.slots, 'skill index')
    const sub = new SkillIndex(mx.skill, hnsw, hnsw.getMaxElements())
    sub.slots = mx.slots
    for (let i = 0; i + 2 < mx.members.length; i += 3) {
      const [label, s, shardLabel] = [mx.members[i]!, mx.members[i + 1]!, mx.members[i + 2]!]
      const entry = group.shards[s]?.entries[shardLabel]
      if (entry === undefined || !entry.skills.has(mx.skill) || !Number.isInteger(label) || label < 0 || label >= mx.slots || sub.entries[label] !== undefined) {
        throw new IndexLoadError(`skill index ${mx.file} has an inconsistent member at label ${label}`)
      }
      sub.restoreMember(label, entry)
    }
    const holders = group.postings.get(mx.skill)?.size ?? 0
    if (sub.live !== holders) throw new IndexLoadError(`skill index ${mx.file} holds ${sub.live} agents, but ${holders} hold "${mx.skill}"`)
    // Labels without a member were removed before the save: they are marked deleted in the file.
    for (let label = mx.slots - 1; label >= 0; label--) if (sub.entries[label] === undefined) sub.free.push(label)
    group.skillIndexes.adopt(sub, mx.byMisses === true)
  }

  #group (model: string, dims: number): Group {
    let group = this.#groups.get(model)
    if (group === undefined) {
      const { skillIndexMinAgents: minAgents, skillIndexMaxShare: maxShare, skillIndexBudget: budget, skillIndexMissBudget: missBudget } = this.#settings
      dims = positiveInt(dims, `dims of ${model}`, 4096)
      group = { model, dims, shards: [], live: 0, postings: new Map(), skillIndexes: new SkillIndexes(dims, { minAgents, maxShare, budget, missBudget }) }
      this.#groups.set(model, group)
    }
    return group
  }

  /** A shard with a free label, else the last one if it has room (grown by doubling), else a new one. */
  #shardForInsert (group: Group): Shard {
    for (const shard of group.shards) if (shard.free.length > 0) return shard
    const { maxShardSize, initialCapacity, M, efConstruction, ef } = this.#settings
    const last = group.shards.at(-1)
    if (last !== undefined && last.slots < maxShardSize) {
      if (last.slots >= last.capacity) {
        // initIndex's size is a hard cap: grow before it is reached. resizeIndex copies, no rebuild.
        last.grow(Math.min(maxShardSize, last.capacity * 2))
      }
      return last
    }
    const hnsw = new hnswlib.HierarchicalNSW('cosine', group.dims)
    // A fixed seed per shard keeps builds reproducible.
    hnsw.initIndex(initialCapacity, M, efConstruction, 100 + group.shards.length)
    const shard = new Shard(hnsw, group.dims, initialCapacity)
    shard.setEf(ef)
    group.shards.push(shard)
    return shard
  }

  #setFields (entry: Entry, record: StoredRecord): void {
    this.#post(entry, false)
    const before = entry.skills
    entry.record = record
    entry.skills = lowerSet(record.skills)
    entry.policy = new Set(record.policy)
    this.#post(entry, true)
    const group = this.#groupOf(entry)
    group.skillIndexes.retagged(entry, before, group)
  }

  #groupOf (entry: Entry): Group {
    return this.#groups.get(entry.record.model)!
  }

  /** Adds the entry to (or takes it out of) its skills' posting sets. */
  #post (entry: Entry, add: boolean): void {
    const postings = this.#groupOf(entry).postings
    for (const skill of entry.skills) {
      let set = postings.get(skill)
      if (add) {
        if (set === undefined) postings.set(skill, set = new Set())
        set.add(entry)
      } else if (set !== undefined) {
        set.delete(entry)
        if (set.size === 0) postings.delete(skill)
      }
    }
  }
}

interface MetaRecord { label: number, agent: string, skills: string[], policy: string[], schemaHash: string, cost: number, latencyMs: number, capacity: number }
interface MetaShard { file: string, vectorsFile: string, slots: number, capacity: number, records: MetaRecord[] }
/** `members`: (label here, shard, label there) triples; `byMisses`: chosen by the miss rule. */
interface MetaSkillIndex { skill: string, file: string, slots: number, members: number[], byMisses?: boolean }
/** `skillIndexes` is absent in version 1; `skillIndexBuilds` lists the sub-indexes chosen but not complete. */
interface MetaGroup { model: string, dims: number, shards: MetaShard[], skillIndexes?: MetaSkillIndex[], skillIndexBuilds?: Array<{ skill: string, byMisses?: boolean }> }
interface Meta { format: string, version: number, settings: Settings, groups: MetaGroup[] }


function storedRecord (r: IndexRecord, model: string): StoredRecord {
  nonEmpty(r.agent, 'agent')
  nonNegative(r.cost, 'cost')
  nonNegative(r.latencyMs, 'latencyMs')
  nonNegative(r.capacity, 'capacity')
  if (typeof r.schemaHash !== 'string') throw new TypeError('schemaHash must be a hex string')
  return Object.freeze({
    agent: r.agent,
    model,
    skills: Object.freeze([...r.skills]),
    policy: Object.freeze([...r.policy]),
    schemaHash: r.schemaHash.toLowerCase(),
    cost: r.cost,
    latencyMs: r.latencyMs,
    capacity: r.capacity
  })
}

function positiveInt (n: number, what: string, max = 2 ** 31): number {
  if (!Number.isInteger(n) || n < 1 || n > max) throw new RangeError(`${what} must be an integer in 1..${max}`)
  return n
}

function fraction (n: number, what: string, max: number): number {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > max) throw new RangeError(`${what} must be a number in 0..${max}`)
  return n
}

function nonNegative (n: number, what: string): void {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new RangeError(`${what} must be a finite number >= 0`)
}

function nonEmpty (s: string, what: string): string {
  if (typeof s !== 'string' || s === '') throw new TypeError(`${what} must be a non-empty string`)
  return s
}
