/** The capability index's public types: what goes in, what a query asks, what comes back. */

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
  /** HNSW graph degree (default 32). */
  M?: number
  /**
   * Build-time candidate list (default 200). At 100k × 384 with ef 200, recall@10 0.984 / 0.992
   * / 0.987 (a skill of ~25%, a narrower one, no filter) against 0.968 / 0.981 / 0.976 with 100;
   * inserts cost ~1.8× as much.
   */
  efConstruction?: number
  /**
   * Search-time candidate list per shard (default 200, and at least twice the candidates asked
   * for, so the deeper ranks the cost re-rank reaches into are found too). It is also the
   * narrowest post-filter: at 150, 1.2% of searches for a skill of ~25% found too few passing
   * agents near the query and fell back to a filtered search 10–20× slower. A fan-out over
   * several shards recalls at least as well as one shard of the same size.
   */
  ef?: number
  /** First allocation of a shard, doubled as it fills (default 1024). */
  initialCapacity?: number
  /**
   * A skills filter whose rarest skill has at most this many agents is answered by an exact scan
   * of those agents instead of HNSW (default: a cost model, see `search.ts`).
   */
  flatScanLimit?: number
  /**
   * Per-skill sub-indexes (`skill-indexes.ts`): an extra HNSW over only the agents of a skill,
   * for skills held by at least this many agents (default: where an exact scan of them stops
   * being cheaper than a sub-index search, 300 at ef 150)…
   */
  skillIndexMinAgents?: number
  /** …and by at most this share of the group (default 1/6: above it a post-filter suffices)… */
  skillIndexMaxShare?: number
  /**
   * …smallest skills first, until the sub-indexes cost this many members per live agent of the
   * group (default 0.5: at most ~20% more memory; 0 turns sub-indexes off).
   */
  skillIndexBudget?: number
  /**
   * Members per live agent for sub-indexes of broader skills whose post-filter searches missed
   * (default 1.25: at 100k, the four ~25% area skills of the route bench, ~200 MiB; 0 turns it
   * off). Only searches that missed spend it (`skill-indexes.ts`).
   */
  skillIndexMissBudget?: number
}

export interface IndexStats {
  size: number
  groups: Array<{
    model: string
    dims: number
    shards: Array<{ live: number, slots: number, capacity: number }>
    /** Complete sub-indexes; `byMisses`: chosen because post-filter searches for the skill missed. */
    skillIndexes: Array<{ skill: string, live: number, slots: number, capacity: number, byMisses: boolean }>
    /** Sub-indexes being built by `maintain`: members added so far, of how many queued. */
    skillIndexBuilds: Array<{ skill: string, added: number, queued: number, byMisses: boolean }>
  }>
}
