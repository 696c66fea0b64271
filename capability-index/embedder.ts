/**
 * The one small interface every embedder implements: the offline hash embedder, an
 * OpenAI-compatible HTTP endpoint, and later anything else.
 */

export interface Embedder {
  /**
   * Model id, e.g. `hash-ngram-384@1` or `openai:text-embedding-3-small`. The index keeps one
   * shard group per model, so vectors of two models are never compared. Any change that moves
   * vectors (features, weights, tokeniser) must change the id.
   */
  readonly model: string
  readonly dims: number
  /** One L2-normalised vector of `dims` values per text, in order. */
  embed (texts: string[]): Promise<Float32Array[]>
}

/** Scales `v` to unit length in place (a zero vector stays zero) and returns it. */
export function l2Normalize (v: Float32Array): Float32Array {
  let sum = 0
  for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!
  if (sum > 0) {
    const scale = 1 / Math.sqrt(sum)
    for (let i = 0; i < v.length; i++) v[i] = v[i]! * scale
  }
  return v
}
