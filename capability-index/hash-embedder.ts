/**
 * The default embedder: offline, deterministic, nothing to download. Signed feature hashing of
 * word unigrams, word bigrams, character 3- to 5-grams and a few hand-written concepts, with
 * sublinear term frequency, L2-normalised.
 *
 * Good enough to route a request to one of a handful of agents by meaning-ish overlap ("put these
 * names in alphabetical order" finds the sort agent); not a language model. Every peer uses the
 * same function, so the vectors in the mesh stay comparable without shipping any weights.
 */
import { STOPWORDS } from './stopwords.ts'
import { l2Normalize, type Embedder } from './embedder.ts'

/** Bump whenever features, weights, stopwords or concepts change: old vectors no longer compare. */
const ALGORITHM_VERSION = 1

export interface HashEmbedderOptions {
  /** Vector length (default 384). */
  dims?: number
  /** Remember the vectors of this many recent texts (default 0: none). */
  cache?: number
}

// Per-feature weights. Concepts weigh most because they carry the paraphrase knowledge; character
// n-grams are many per word, so each counts little, and together they catch spelling variants
// ("summarise"/"summarize"; not "kilometres"/"km", which the concepts cover).
const WEIGHT = { word: 1, bigram: 0.6, char: 0.2, concept: 1.6 } as const

/** Request filler on top of node/agents' English stopwords: words any request may contain. */
const FILLER = new Set(`please want need needs give tell help show let know find make makes made thing things
  something anything one ones way really quick quickly many lot lots use used using uses work works
  able ok okay hey hi thanks thank whats hows`.split(/\s+/).filter(Boolean))

/**
 * Concepts: a tiny, hand-written map from words to the capability they usually ask for. It applies
 * to descriptions and requests alike, so a request word and a description word that share a
 * concept meet in one feature ("alphabetical" and "sort", "gist" and "summarize"). Words are
 * matched as written, then by their stem; `a_b` entries match the word pair "a b". Kept to the
 * demo agents' domains and free of words they share (no "number", "text", "time", "document"):
 * it is a nudge, not a thesaurus.
 */
const CONCEPTS: Record<string, string> = {
  arithmetic: `arithmetic math maths calculate calculator calculation compute computation evaluate
    expression formula equation sum add plus minus subtract multiply multiplied times product divide
    divided division quotient remainder modulo percent percentage power squared cubed sqrt root total`,
  conversion: `convert conversion converter unit measurement metric imperial kilometre kilometer km
    metre meter mile mph feet foot ft inch yard centimetre centimeter cm millimetre millimeter mm
    celsius fahrenheit kelvin degree temperature pound lb ounce oz kilogram kg gram tonne ton
    litre liter gallon cup byte kb mb gb tb kib mib gib tib kilobyte megabyte gigabyte terabyte second minute hour day week distance
    weight mass volume`,
  textstats: `count counter statistic statistics stats word wordcount character letter frequency
    frequent keyword reading analyse analyze analysis length occurrence`,
  sort: `sort order alphabetical alphabetically alphabetize alphabetise arrange rank ascending
    descending asc desc deduplicate dedupe duplicate rearrange reorder lowest highest smallest
    largest`,
  json: `json field key property attribute object record nested pointer path pick omit rename
    extract pull reshape restructure transform payload`,
  summary: `summary summarize summarise summarization summarisation summarizer shorten shorter
    condense tldr gist brief briefly recap digest overview synopsis abstract outline highlight key_point
    main_point article`
}

const SYMBOLS: Record<string, string> = { '%': 'percent', '+': 'plus', '×': 'times', '*': 'times', '÷': 'divide', '^': 'power' }

const CONCEPT_OF = new Map<string, string[]>()
for (const [concept, words] of Object.entries(CONCEPTS)) {
  for (const w of words.split(/\s+/).filter(Boolean)) {
    const key = w.replace('_', ' ')
    CONCEPT_OF.set(key, [...(CONCEPT_OF.get(key) ?? []), concept])
  }
}

function conceptsOf (word: string, stemmed: string): string[] {
  return CONCEPT_OF.get(word) ?? CONCEPT_OF.get(stemmed) ?? []
}

export class HashEmbedder implements Embedder {
  readonly model: string
  readonly dims: number

  /** Vectors of recent texts (`cache` option): peers sharing a process and an embedder embed each text once. */
  readonly #cache: Map<string, Float32Array> | undefined
  readonly #cacheSize: number

  constructor (options: HashEmbedderOptions = {}) {
    this.#cacheSize = options.cache ?? 0
    this.#cache = this.#cacheSize > 0 ? new Map() : undefined
    const dims = options.dims ?? 384
    if (!Number.isInteger(dims) || dims < 8 || dims > 4096) throw new RangeError('dims must be an integer in 8..4096')
    this.dims = dims
    this.model = `hash-ngram-${dims}@${ALGORITHM_VERSION}`
  }

  async embed (texts: string[]): Promise<Float32Array[]> {
    return texts.map(t => this.embedSync(t))
  }

  /** The same vector `embed` gives, synchronously. */
  embedSync (text: string): Float32Array {
    if (this.#cache === undefined) return this.#compute(text)
    let v = this.#cache.get(text)
    if (v === undefined) {
      v = this.#compute(text)
      if (this.#cache.size >= this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value!)
      this.#cache.set(text, v)
    }
    return v.slice()
  }

  #compute (text: string): Float32Array {
    const v = new Float32Array(this.dims)
    for (const [feature, weight] of hashFeatures(text)) {
      const h = fmix32(fnv1a(feature))
      // The sign comes from a different mix of the same hash, so colliding features cancel on
      // average instead of piling up.
      const sign = (fmix32(h ^ 0x9e3779b9) & 1) === 0 ? 1 : -1
      const i = h % this.dims
      v[i] = v[i]! + sign * weight
    }
    return l2Normalize(v)
  }
}

/** Lower-cased content words, in order: no stopwords, filler, bare numbers or single letters. */
export function contentTokens (text: string): string[] {
  const normalized = text.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase()
    .replace(/[’‘`]/g, "'")
    .replace(/\btl\s*;?\s*dr\b/g, 'tldr')
    // Operator symbols are the strongest hint a request is arithmetic; "-" and "/" are not (hyphens, paths).
    .replace(/[%+×*÷^]/g, c => ` ${SYMBOLS[c]!} `)
  const out: string[] = []
  for (const raw of normalized.match(/[\p{L}\p{N}]+(?:'[\p{L}\p{N}]+)*/gu) ?? []) {
    if (STOPWORDS.has(raw)) continue
    const word = raw.replace(/'/g, '')
    if (word.length < 2 || FILLER.has(word) || /^\p{N}+$/u.test(word)) continue
    out.push(word)
  }
  return out
}

/** Every feature of `text` with its weight: word, bigram, character n-gram and concept features. */
export function hashFeatures (text: string): Map<string, number> {
  const counts = new Map<string, number>()
  const add = (feature: string): void => { counts.set(feature, (counts.get(feature) ?? 0) + 1) }
  const words = contentTokens(text)
  const stems = words.map(stem)
  for (let i = 0; i < words.length; i++) {
    const s = stems[i]!
    add(`w:${s}`)
    if (i > 0) {
      const pair = `${stems[i - 1]!} ${s}`
      add(`b:${pair}`)
      for (const concept of CONCEPT_OF.get(pair) ?? []) add(`k:${concept}`)
    }
    const marked = `<${words[i]!}>`
    for (let n = 3; n <= 5; n++) {
      for (let j = 0; j + n <= marked.length; j++) add(`c:${marked.slice(j, j + n)}`)
    }
    for (const concept of conceptsOf(words[i]!, s)) add(`k:${concept}`)
  }
  // Sublinear tf: the tenth "word" in a description says less than the first.
  const out = new Map<string, number>()
  for (const [feature, tf] of counts) {
    const kind = feature[0] === 'w' ? 'word' : feature[0] === 'b' ? 'bigram' : feature[0] === 'c' ? 'char' : 'concept'
    out.set(feature, WEIGHT[kind] * (1 + Math.log(tf)))
  }
  return out
}

/** A light suffix stripper (plurals, -ing, -ed) so "sorting", "sorted" and "sorts" meet. */
export function stem (word: string): string {
  if (word.length > 4 && word.endsWith('ies')) return word.slice(0, -3) + 'y'
  if (word.length > 4 && /(ch|sh|x|ss|z)es$/.test(word)) return word.slice(0, -2)
  if (word.length > 5 && word.endsWith('ing')) return word.slice(0, -3)
  if (word.length > 4 && word.endsWith('ed') && !word.endsWith('eed')) return word.slice(0, -2)
  if (word.length > 3 && word.endsWith('s') && !/(ss|us|is)$/.test(word)) return word.slice(0, -1)
  return word
}

/** 32-bit FNV-1a over UTF-16 code units (the text is already normalised, so this is stable). */
function fnv1a (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** MurmurHash3's finaliser: FNV's low bits are weak, this spreads every input bit. */
function fmix32 (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}
