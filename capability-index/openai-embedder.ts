/**
 * An embedder backed by any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, Ollama, vLLM,
 * llama.cpp server, LM Studio, ...). Configuration comes from the options or the environment:
 * `AGENTMESH_EMBEDDINGS_URL`, `AGENTMESH_EMBEDDINGS_MODEL`, `AGENTMESH_EMBEDDINGS_KEY` and
 * `AGENTMESH_EMBEDDINGS_DIMS`.
 */
import { l2Normalize, type Embedder } from './embedder.ts'

export interface OpenAiEmbedderOptions {
  /** Server root such as `http://127.0.0.1:11434` (a trailing `/v1` is accepted too). */
  baseUrl?: string
  model?: string
  /** Sent as `Authorization: Bearer <key>` when set. */
  apiKey?: string
  /** Vector length the model returns; every response is checked against it. */
  dims?: number
  /** Texts per request (default 64). */
  batchSize?: number
  /** Per request (default 30 s). */
  timeoutMs?: number
  /** Defaults to `process.env`. */
  env?: Record<string, string | undefined>
  /** Defaults to the global `fetch`. */
  fetch?: typeof fetch
}

export class EmbeddingError extends Error {
  override name = 'EmbeddingError'
}

export class OpenAiEmbedder implements Embedder {
  readonly model: string
  readonly dims: number
  readonly url: string
  readonly #remoteModel: string
  readonly #apiKey: string | undefined
  readonly #batchSize: number
  readonly #timeoutMs: number
  readonly #fetch: typeof fetch

  constructor (options: OpenAiEmbedderOptions = {}) {
    const env = options.env ?? process.env
    const baseUrl = options.baseUrl ?? env.AGENTMESH_EMBEDDINGS_URL
    const model = options.model ?? env.AGENTMESH_EMBEDDINGS_MODEL
    const dims = options.dims ?? (env.AGENTMESH_EMBEDDINGS_DIMS === undefined ? undefined : Number(env.AGENTMESH_EMBEDDINGS_DIMS))
    if (baseUrl === undefined || baseUrl === '') throw new EmbeddingError('no embeddings URL: set AGENTMESH_EMBEDDINGS_URL or pass baseUrl')
    if (model === undefined || model === '') throw new EmbeddingError('no embeddings model: set AGENTMESH_EMBEDDINGS_MODEL or pass model')
    // The index is sized before the first call, so the length must be known up front.
    if (dims === undefined || !Number.isInteger(dims) || dims < 1 || dims > 4096) {
      throw new EmbeddingError('embedding dims must be an integer in 1..4096: set AGENTMESH_EMBEDDINGS_DIMS or pass dims')
    }
    const root = baseUrl.replace(/\/+$/, '')
    this.url = root.endsWith('/v1') ? `${root}/embeddings` : `${root}/v1/embeddings`
    this.#remoteModel = model
    this.model = `openai:${model}`
    this.dims = dims
    const key = options.apiKey ?? env.AGENTMESH_EMBEDDINGS_KEY
    this.#apiKey = key === '' ? undefined : key
    this.#batchSize = options.batchSize ?? 64
    this.#timeoutMs = options.timeoutMs ?? 30_000
    this.#fetch = options.fetch ?? fetch
    if (!Number.isInteger(this.#batchSize) || this.#batchSize < 1) throw new EmbeddingError('batchSize must be an integer >= 1')
  }

  async embed (texts: string[]): Promise<Float32Array[]> {
    const out: Float32Array[] = []
    // One batch at a time: simple, and kind to rate-limited endpoints.
    for (let i = 0; i < texts.length; i += this.#batchSize) {
      out.push(...await this.#request(texts.slice(i, i + this.#batchSize)))
    }
    return out
  }

  async #request (input: string[]): Promise<Float32Array[]> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' }
    if (this.#apiKey !== undefined) headers.authorization = `Bearer ${this.#apiKey}`
    const signal = AbortSignal.timeout(this.#timeoutMs)
    let text: string
    let status: number
    try {
      const response = await this.#fetch(this.url, {
        method: 'POST', headers, body: JSON.stringify({ model: this.#remoteModel, input }), signal
      })
      status = response.status
      text = await response.text()
    } catch (err) {
      if (signal.aborted) throw new EmbeddingError(`embeddings request to ${this.url} timed out after ${this.#timeoutMs} ms`)
      throw new EmbeddingError(`embeddings request to ${this.url} failed: ${(err as Error).message}`)
    }
    if (status < 200 || status > 299) throw new EmbeddingError(`embeddings request to ${this.url} failed: HTTP ${status}: ${excerpt(text)}`)
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      throw new EmbeddingError(`embeddings response from ${this.url} is not JSON: ${excerpt(text)}`)
    }
    return this.#vectors(body, input.length)
  }

  #vectors (body: unknown, expected: number): Float32Array[] {
    const data = (typeof body === 'object' && body !== null) ? (body as { data?: unknown }).data : undefined
    if (!Array.isArray(data)) throw new EmbeddingError(`embeddings response from ${this.url} has no "data" list`)
    if (data.length !== expected) throw new EmbeddingError(`embeddings response has ${data.length} vectors for ${expected} texts`)
    const out = new Array<Float32Array | undefined>(expected)
    for (const [position, item] of data.entries()) {
      const { embedding, index } = (typeof item === 'object' && item !== null ? item : {}) as { embedding?: unknown, index?: unknown }
      // Servers may reorder: "index" says which input a vector belongs to.
      const slot = index === undefined ? position : index
      if (typeof slot !== 'number' || !Number.isInteger(slot) || slot < 0 || slot >= expected || out[slot] !== undefined) {
        throw new EmbeddingError(`embeddings response item ${position} has a bad index ${JSON.stringify(index)}`)
      }
      if (!Array.isArray(embedding)) throw new EmbeddingError(`embeddings response item ${position} has no "embedding" list`)
      if (embedding.length !== this.dims) {
        throw new EmbeddingError(`embeddings from ${this.model} have ${embedding.length} dims, expected ${this.dims}`)
      }
      const v = new Float32Array(this.dims)
      for (let i = 0; i < this.dims; i++) {
        const x = embedding[i] as unknown
        if (typeof x !== 'number' || !Number.isFinite(x)) throw new EmbeddingError(`embeddings response item ${position} has a non-finite value`)
        v[i] = x
      }
      out[slot] = l2Normalize(v)
    }
    return out as Float32Array[]
  }
}

function excerpt (text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : (flat === '' ? '(empty body)' : flat)
}
