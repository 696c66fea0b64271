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
 * Filters: skills, policy, schema hash, availability and exclusions run inside the HNSW search
 * (hnswlib's filter callback), so they act before ranking and k results come back whenever k
 * agents pass. HNSW pays about 1/selectivity extra node visits for that, so a skill held by few
 * agents is answered instead by an exact scan of exactly those agents (postings per skill). For
 * that scan, and to tell a changed vector from an unchanged one, each shard also keeps its unit
 * vectors in a Float32Array (dims × 4 bytes per agent; reading hnswlib's copy costs ~40 µs).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import hnswlib from 'hnswlib-node'

type Hnsw = InstanceType<typeof hnswlib.HierarchicalNSW>

/** What the index stores per agent. Field names follow the VCV body. */
export interface IndexRecord {
  /** `<host peer id>/<name>`: the key. */
  agent: string
  /** Embedding of the VCV text. Cosine similarity, so its length does not matter; all zeros is similar to nothing. */
  vector: Float32Array | readonly number[]
  /** Embedding model id; defaults to the index's model. */
  model?: string
  skills: readonly string[]
  policy: readonly string[]
  /** Hex SHA-256 over the input and output schemas (VCV `schemaHash`). */
  schemaHash: string
  cost: number
  latencyMs: number
  capacity: number
}

/** A stored record: the fields, without the vector. */
export interface StoredRecord {
  readonly agent: string
  readonly model: string
  readonly skills: readonly string[]
  readonly policy: readonly string[]
  readonly schemaHash: string
  readonly cost: number
  readonly latencyMs: number
  readonly capacity: number
}

/** Every field narrows; all of them act inside the search (HNSW or exact scan), before ranking. */
export interface SearchFilter {
  /** Every one of these skills (case-insensitive). */
  skills?: readonly string[]
  /** Every one of these policy flags (exact). */
  policy?: readonly string[]
  /** Only agents with exactly these input and output schemas. */
  schemaHash?: string
  /** Live availability, e.g. not saturated, not circuit-broken. Called per candidate. */
  available?: (agent: string) => boolean
  exclude?: ReadonlySet<string>
}

export interface SearchQuery {
  vector: Float32Array | readonly number[]
  k: number
  /** Which shard group to search; defaults to the index's model. */
  model?: string
  filter?: SearchFilter
  /** How much similarity the cheapest agent may gain over the most expensive one (default 0). */
  costWeight?: number
  /** Nearest candidates by similarity that the cost re-rank chooses from (default 2k with a costWeight, else k). */
  candidates?: number
  /** Scan the candidates exactly instead of searching HNSW (checks, measurements). */
  exact?: boolean
}

export interface SearchHit {
  agent: string
  /** Cosine similarity to the query, in [-1, 1]. */
  similarity: number
  /** similarity − costWeight × cost / (1 + cost). */
  score: number
  cost: number
  record: StoredRecord
}

export interface CapabilityIndexOptions {
  /** Vector length of the default model. */
  dims: number
  /** The peer's own embedding model id: the default for records and queries. */
  model: string
  /**
   * Slots per shard before a new shard opens (default 200k). Each shard is a whole search, so at
   * 100k one shard is ~2× faster than two (measured: `npm run bench -- route`).
   */
  maxShardSize?: number
  /** HNSW graph degree (default 32: at 100k × 384 it keeps recall@10 ≥ 0.95 in one shard). */
  M?: number
  /** Build-time candidate list (default 100). */
  efConstruction?: number
  /**
   * Search-time candidate list per shard (default 150, and at least twice the candidates asked
   * for, so the deeper ranks the cost re-rank reaches into are found too). A fan-out over several
   * shards recalls at least as well as one shard of the same size.
   */
  ef?: number
  /** First allocation of a shard, doubled as it fills (default 1024). */
  initialCapacity?: number
  /**
   * A skills filter whose rarest skill has at most this many agents is answered by an exact scan
   * of those agents instead of HNSW (default: adaptive, see `search`).
   */
  flatScanLimit?: number
}

export interface IndexStats {
  size: number
  groups: Array<{ model: string, dims: number, shards: Array<{ live: number, slots: number, capacity: number }> }>
}

export class IndexLoadError extends Error {
  override name = 'IndexLoadError'
}

/** Bump on any change to the files `save` writes. */
export const INDEX_FORMAT_VERSION = 1
const FORMAT = 'agentmesh-capability-index'
const META_FILE = 'capability-index.json'
const FLAT_SCAN_MIN = 256
const FLAT_SCAN_C = 8

interface Entry {
  record: StoredRecord
  shard: Shard
  label: number
  /** Lower-cased skills and policy, for the filter callback. */
  skills: ReadonlySet<string>
  policy: ReadonlySet<string>
}

class Shard {
  readonly hnsw: Hnsw
  readonly dims: number
  /** Entry per label; undefined for a free (deleted) label. */
  readonly entries: Array<Entry | undefined> = []
  readonly free: number[] = []
  slots = 0
  capacity: number
  live = 0
  /** The unit vector of each label, `dims` floats apart (hnswlib's own copy costs ~40 µs per read). */
  vectors: Float32Array
  /** hnswlib's current ef, so a query sets it only when it changes. */
  #ef = 0

  constructor (hnsw: Hnsw, dims: number, capacity: number) {
    this.hnsw = hnsw
    this.dims = dims
    this.capacity = capacity
    this.vectors = new Float32Array(capacity * dims)
  }

  setEf (ef: number): void {
    if (ef !== this.#ef) this.hnsw.setEf(this.#ef = ef)
  }

  grow (capacity: number): void {
    this.hnsw.resizeIndex(capacity)
    const vectors = new Float32Array(capacity * this.dims)
    vectors.set(this.vectors)
    this.vectors = vectors
    this.capacity = capacity
  }

  vector (label: number): Float32Array {
    return this.vectors.subarray(label * this.dims, (label + 1) * this.dims)
  }
}

interface Group {
  model: string
  dims: number
  shards: Shard[]
  live: number
  /** Lower-cased skill → the entries that have it: sizes a skills filter before searching. */
  postings: Map<string, Set<Entry>>
}

interface Settings {
  dims: number
  model: string
  maxShardSize: number
  M: number
  efConstruction: number
  ef: number
  initialCapacity: number
  flatScanLimit?: number
}

export class CapabilityIndex {
  readonly dims: number
  readonly model: string
  readonly #settings: Settings
  readonly #groups = new Map<string, Group>()
  readonly #entries = new Map<string, Entry>()

  constructor (options: CapabilityIndexOptions) {
    const maxShardSize = options.maxShardSize ?? 200_000
    this.#settings = {
      dims: positiveInt(options.dims, 'dims', 4096),
      model: nonEmpty(options.model, 'model'),
      maxShardSize: positiveInt(maxShardSize, 'maxShardSize'),
      M: positiveInt(options.M ?? 32, 'M', 256),
      efConstruction: positiveInt(options.efConstruction ?? 100, 'efConstruction'),
      ef: positiveInt(options.ef ?? 150, 'ef'),
      initialCapacity: Math.min(maxShardSize, positiveInt(options.initialCapacity ?? 1024, 'initialCapacity'))
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

  stats (): IndexStats {
    return {
      size: this.size,
      groups: [...this.#groups.values()].map(g => ({
        model: g.model,
        dims: g.dims,
        shards: g.shards.map(s => ({ live: s.live, slots: s.slots, capacity: s.capacity }))
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
      return
    }
    const direction = unit(vector)
    const stored = entry.shard.vector(entry.label)
    if (!sameVector(stored, direction)) {
      entry.shard.hnsw.addPoint(vector, entry.label)
      stored.set(direction)
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
    this.#groupOf(entry).live--
    this.#post(entry, false)
    this.#entries.delete(agent)
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
    const accept = admits(query.filter)
    // Size the skills filter by its rarest skill: few enough agents, and an exact scan of them is
    // cheaper than HNSW, which must walk past ~1/selectivity non-matching nodes per match.
    let rarest: ReadonlySet<Entry> | undefined
    for (const skill of query.filter?.skills ?? []) {
      const posting = group.postings.get(skill.toLowerCase())
      if (posting === undefined) return []
      if (rarest === undefined || posting.size < rarest.size) rarest = posting
    }
    const found = query.exact === true
      ? flatScan(rarest ?? groupEntries(group), unit(point), accept, candidates)
      : rarest !== undefined && rarest.size <= this.#flatScanLimit(group)
        ? flatScan(rarest, unit(point), accept, candidates)
        : hnswSearch(group, point, query.filter === undefined ? undefined : accept, candidates, Math.max(this.#settings.ef, 2 * candidates))
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
        shard.hnsw.writeIndexSync(join(dir, file))
        fsyncPath(join(dir, file))
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
      groups.push({ model: group.model, dims: group.dims, shards })
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
    if (meta.version !== INDEX_FORMAT_VERSION) {
      throw new IndexLoadError(`capability index in ${dir} has format version ${String(meta.version)}; this peer reads version ${INDEX_FORMAT_VERSION}`)
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
        const path = join(dir, ms.file)
        if (!existsSync(path)) throw new IndexLoadError(`capability index in ${dir} lists shard ${ms.file}, which is missing`)
        const fileDims = hnswFileDims(path)
        if (fileDims <= 0) throw new IndexLoadError(`shard ${ms.file} is not an hnswlib index file`)
        if (fileDims !== mg.dims) throw new IndexLoadError(`shard ${ms.file} holds ${fileDims}-dimensional vectors, expected ${mg.dims}`)
        // A fresh object for every read: reading into an initialised hnswlib index that then
        // fails leaves it in a state that crashes the process at exit.
        const hnsw = new hnswlib.HierarchicalNSW('cosine', mg.dims)
        try {
          hnsw.readIndexSync(path)
        } catch (err) {
          throw new IndexLoadError(`shard ${ms.file} cannot be read: ${(err as Error).message}`)
        }
        if (hnsw.getCurrentCount() !== ms.slots) throw new IndexLoadError(`shard ${ms.file} holds ${hnsw.getCurrentCount()} points, its metadata says ${ms.slots}`)
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
    }
  }

  /**
   * The rarest-skill count below which a search scans exactly. Default: HNSW with a filter of
   * selectivity s costs about ef / s node visits, a scan costs s × live dot products; they meet
   * near s × live = sqrt(c × ef × live). c ≈ 8 was measured at 20k and 100k agents × 384 dims
   * with filters unrelated to the query, HNSW's worst case, so no query costs much more than the
   * slower of the two at the crossover.
   */
  #flatScanLimit (group: Group): number {
    return this.#settings.flatScanLimit ?? Math.max(FLAT_SCAN_MIN, Math.round(Math.sqrt(FLAT_SCAN_C * this.#settings.ef * group.live)))
  }

  #group (model: string, dims: number): Group {
    let group = this.#groups.get(model)
    if (group === undefined) {
      group = { model, dims: positiveInt(dims, `dims of ${model}`, 4096), shards: [], live: 0, postings: new Map() }
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
    entry.record = record
    entry.skills = lowerSet(record.skills)
    entry.policy = new Set(record.policy)
    this.#post(entry, true)
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
interface MetaGroup { model: string, dims: number, shards: MetaShard[] }
interface Meta { format: string, version: number, settings: Settings, groups: MetaGroup[] }

/** The filter as one predicate over entries, with the query's lists lower-cased once. */
function admits (filter: SearchFilter | undefined): (entry: Entry) => boolean {
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

type Found = Array<{ entry: Entry, similarity: number }>

/**
 * Every shard of the group, with the filter inside the HNSW search; unsorted across shards.
 * Without a filter no callback is passed (each costs a native-to-JS call): removed labels are
 * marked deleted in hnswlib, and a label without a live entry is dropped from the results anyway.
 */
function hnswSearch (group: Group, point: number[], accept: ((entry: Entry) => boolean) | undefined, n: number, ef: number): Found {
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

function * groupEntries (group: Group): Iterable<Entry> {
  for (const shard of group.shards) for (const entry of shard.entries) if (entry !== undefined) yield entry
}

/** Exact: the n most similar of `pool` that pass the filter. */
function flatScan (pool: Iterable<Entry>, q: Float32Array, accept: (entry: Entry) => boolean, n: number): Found {
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

/** hnswlib-node takes plain arrays; checks length and finiteness on the way. */
function checkVector (v: Float32Array | readonly number[], dims: number): number[] {
  if (v.length !== dims) throw new RangeError(`vector has ${v.length} dims, expected ${dims}`)
  const out = new Array<number>(dims)
  for (let i = 0; i < dims; i++) {
    const x = v[i]!
    if (!Number.isFinite(x)) throw new RangeError('vector has a non-finite value')
    out[i] = x
  }
  return out
}

/** `v` scaled to unit length, as float32 (hnswlib normalises cosine points the same way). */
function unit (v: number[]): Float32Array {
  const out = Float32Array.from(v)
  let sum = 0
  for (const x of v) sum += x * x
  if (sum > 0) {
    const scale = 1 / Math.sqrt(sum)
    for (let i = 0; i < out.length; i++) out[i] = v[i]! * scale
  }
  return out
}

/** Same direction to float32 precision: then a new version with the same text costs no graph update. */
function sameVector (a: Float32Array, b: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i]! - b[i]!) > 1e-6) return false
  return true
}

function lowerSet (xs: readonly string[]): ReadonlySet<string> {
  return new Set(xs.map(x => x.toLowerCase()))
}

function positiveInt (n: number, what: string, max = 2 ** 31): number {
  if (!Number.isInteger(n) || n < 1 || n > max) throw new RangeError(`${what} must be an integer in 1..${max}`)
  return n
}

function nonNegative (n: number, what: string): void {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new RangeError(`${what} must be a finite number >= 0`)
}

function nonEmpty (s: string, what: string): string {
  if (typeof s !== 'string' || s === '') throw new TypeError(`${what} must be a non-empty string`)
  return s
}

/**
 * Dimensions recorded in an hnswlib index file's header: the point bytes are label_offset −
 * offsetData (header: offsetLevel0, maxElements, count, sizePerElement, labelOffset, offsetData,
 * each a little-endian u64). hnswlib itself does not check them against the space it reads into.
 */
function hnswFileDims (path: string): number {
  const header = Buffer.alloc(48)
  const fd = openSync(path, 'r')
  try {
    if (readSync(fd, header, 0, 48, 0) < 48) return -1
  } finally {
    closeSync(fd)
  }
  const bytes = Number(header.readBigUInt64LE(32) - header.readBigUInt64LE(40))
  return bytes % 4 === 0 ? bytes / 4 : -1
}

function writeFileDurable (path: string, data: Uint8Array): void {
  const fd = openSync(path, 'w')
  try {
    for (let at = 0; at < data.byteLength;) at += writeSync(fd, data, at, data.byteLength - at)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

function writeFileAtomic (path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`
  writeFileDurable(tmp, Buffer.from(text, 'utf8'))
  renameSync(tmp, path)
}

function fsyncPath (path: string): void {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
