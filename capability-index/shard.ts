/**
 * One HNSW shard and the JS table beside it (entry per label), and the vector helpers the index
 * and its search share.
 */
import type hnswlib from 'hnswlib-node'
import type { SkillIndexes } from './skill-indexes.ts'
import type { StoredRecord } from './types.ts'

export type Hnsw = InstanceType<typeof hnswlib.HierarchicalNSW>
export interface Entry {
  record: StoredRecord
  shard: Shard
  label: number
  /** Lower-cased skills and policy, for the filter callback. */
  skills: ReadonlySet<string>
  policy: ReadonlySet<string>
}

export class Shard {
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

export interface Group {
  model: string
  dims: number
  shards: Shard[]
  live: number
  /** Lower-cased skill → the entries that have it: sizes a skills filter before searching. */
  postings: Map<string, Set<Entry>>
  /** Per-skill HNSW sub-indexes for the skills `skill-indexes.ts` chooses. */
  skillIndexes: SkillIndexes
}


/** hnswlib-node takes plain arrays; checks length and finiteness on the way. */
export function checkVector (v: Float32Array | readonly number[], dims: number): number[] {
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
export function unit (v: number[]): Float32Array {
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
export function sameVector (a: Float32Array, b: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i]! - b[i]!) > 1e-6) return false
  return true
}

export function lowerSet (xs: readonly string[]): ReadonlySet<string> {
  return new Set(xs.map(x => x.toLowerCase()))
}
