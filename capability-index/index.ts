/**
 * The semantic capability index: HNSW shards over the VCVs a peer has verified, and the embedders
 * behind one small interface.
 *
 * @example
 * ```ts
 * const embedder = new HashEmbedder()            // offline, deterministic; or new OpenAiEmbedder()
 * const index = new CapabilityIndex({ model: embedder.model, dims: embedder.dims })
 * const sync = new IndexSync(index, embedder)
 * // feed the capability table's events: added / updated embed and upsert, removed removes
 * for (const e of events) void sync.handle(e)
 * await sync.idle()
 *
 * const [query] = await embedder.embed(['put these names in alphabetical order'])
 * index.search({ vector: query, k: 3, filter: { policy: ['no-network'] }, costWeight: 0.2 })
 * // [{ agent: '12D3Koo…/sort', similarity: 0.52, score: 0.50, cost: 0.1, record: {…} }, …]
 *
 * // background work (skill sub-indexes chosen after changes or missed searches), in slices
 * setInterval(() => { sync.maintain() }, 100)
 *
 * index.save(dir)                                // with the peer's state
 * const again = CapabilityIndex.load(dir, { model: embedder.model, dims: embedder.dims })
 * ```
 */
export type { Embedder } from './embedder.ts'
export { l2Normalize } from './embedder.ts'
export { HashEmbedder } from './hash-embedder.ts'
export type { HashEmbedderOptions } from './hash-embedder.ts'
export { EmbeddingError, OpenAiEmbedder } from './openai-embedder.ts'
export type { OpenAiEmbedderOptions } from './openai-embedder.ts'
export { CapabilityIndex, IndexLoadError, INDEX_FORMAT_VERSION } from './index-store.ts'
export { hnswlibBuild } from './hnswlib.ts'
export type { CapabilityIndexOptions, IndexRecord, IndexStats, SearchFilter, SearchHit, SearchQuery, StoredRecord } from './index-store.ts'
export type { PlanName } from './search.ts'
export { IndexSync, capabilityText, recordFields } from './table-sync.ts'
export type { IndexSyncOptions } from './table-sync.ts'
