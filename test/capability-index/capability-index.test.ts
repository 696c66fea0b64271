import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest'
import fc from 'fast-check'
import { execFile } from 'node:child_process'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { promisify } from 'node:util'
import { readdirSync, readFileSync, writeFileSync, unlinkSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  CapabilityIndex, EmbeddingError, HashEmbedder, INDEX_FORMAT_VERSION, IndexLoadError, IndexSync, OpenAiEmbedder, capabilityText,
  type Embedder, type IndexRecord, type SearchFilter, type SearchHit
} from '../../capability-index/index.ts'
import { chooseByMisses, chooseSkills, MISS_MIN, MISS_RATE } from '../../capability-index/skill-indexes.ts'
import { nativeVerdict } from '../../capability-index/hnswlib.ts'
import { createAgent, demoKinds } from '../../node/agents/registry.ts'
import type { Signer } from '../../protocols/identity.ts'
import type { CapabilityTable, SignedVcv, TableEvent } from '../../protocols/capability/index.ts'
import { broadcasts, events, localAgent, makeSigners, seeded, table } from '../helpers/hosts.ts'

// ---- embedding-like data: random mixtures of a few latent directions, plus small noise ----------

function gaussian (rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())
}

function latentBasis (dims: number, count: number, rand: () => number): Float32Array[] {
  return Array.from({ length: count }, () => unit(Float32Array.from({ length: dims }, () => gaussian(rand))))
}

/** `n` unit vectors, row-major: low-rank like real embeddings (isotropic data says nothing about recall). */
function lowRank (n: number, basis: Float32Array[], rand: () => number): Float32Array {
  const dims = basis[0]!.length
  const out = new Float32Array(n * dims)
  for (let i = 0; i < n; i++) {
    const row = out.subarray(i * dims, (i + 1) * dims)
    const w = basis.map((_, j) => gaussian(rand) / Math.sqrt(1 + j))
    for (let d = 0; d < dims; d++) {
      let x = 0.1 * gaussian(rand)
      for (let j = 0; j < basis.length; j++) x += w[j]! * basis[j]![d]!
      row[d] = x
    }
    unit(row)
  }
  return out
}

function unit (v: Float32Array): Float32Array {
  let s = 0
  for (const x of v) s += x * x
  const k = s > 0 ? 1 / Math.sqrt(s) : 0
  for (let i = 0; i < v.length; i++) v[i] = v[i]! * k
  return v
}

function dot (a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!
  return s
}

function row (m: Float32Array, i: number, dims: number): Float32Array {
  return m.subarray(i * dims, (i + 1) * dims)
}

/** Exact top-k ids by cosine among the rows `admit` lets through. */
function bruteForce (m: Float32Array, dims: number, q: Float32Array, k: number, admit: (i: number) => boolean = () => true): string[] {
  const scored: Array<{ i: number, s: number }> = []
  for (let i = 0; i < m.length / dims; i++) if (admit(i)) scored.push({ i, s: dot(row(m, i, dims), q) })
  return scored.sort((a, b) => b.s - a.s).slice(0, k).map(x => `agent-${x.i}`)
}

function recallAt (exact: string[][], got: string[][]): number {
  let hit = 0
  let total = 0
  exact.forEach((e, qi) => {
    const g = new Set(got[qi])
    hit += e.filter(a => g.has(a)).length
    total += e.length
  })
  return hit / total
}

function record (agent: string, vector: Float32Array, extra: Partial<IndexRecord> = {}): IndexRecord {
  return { agent, vector, skills: ['demo'], policy: ['deterministic'], schemaHash: 'ab', cost: 1, latencyMs: 5, capacity: 4, ...extra }
}

// ---- recall against brute force --------------------------------------------------------------------

describe('capability index: recall against brute force', () => {
  const N = 20_000
  const DIMS = 128
  const QUERIES = 200
  const rand = seeded(11)
  const basis = latentBasis(DIMS, 16, rand)
  const data = lowRank(N, basis, rand)
  const queries = lowRank(QUERIES, basis, rand)
  // ~30% of agents have "common", independent of the vectors (the hard case for filtered HNSW).
  const common = Array.from({ length: N }, () => rand() < 0.3)
  // ~1% have "scarce", also independent of the vectors; "far" marks the 40% least like query 0.
  const scarce = Array.from({ length: N }, () => rand() < 0.01)
  const toQuery0 = Array.from({ length: N }, (_, i) => dot(row(data, i, DIMS), row(queries, 0, DIMS)))
  const farCut = [...toQuery0].sort((a, b) => a - b)[Math.floor(0.4 * N)]!
  const far = toQuery0.map(s => s < farCut)
  const build = (options: Partial<ConstructorParameters<typeof CapabilityIndex>[0]> = {}): CapabilityIndex => {
    // ef 150: the plan each filter gets below is worked out for it (at 200 a 1% filter fits a post-filter).
    const index = new CapabilityIndex({ dims: DIMS, model: 'test-128', ef: 150, ...options })
    for (let i = 0; i < N; i++) {
      const skills = [common[i] ? 'Common' : '', scarce[i] ? 'scarce' : '', far[i] ? 'far' : '', 'x'].filter(s => s !== '')
      index.upsert(record(`agent-${i}`, row(data, i, DIMS), { skills, cost: i % 7 }))
    }
    return index
  }
  let exact: string[][]
  let exactFiltered: string[][]
  const search = (index: CapabilityIndex, filter?: SearchFilter, exactScan = false): string[][] =>
    Array.from({ length: QUERIES }, (_, qi) => index.search({ vector: row(queries, qi, DIMS), k: 10, filter, exact: exactScan }).map(h => h.agent))

  let single: CapabilityIndex
  let sharded: CapabilityIndex
  beforeAll(() => {
    exact = Array.from({ length: QUERIES }, (_, qi) => bruteForce(data, DIMS, row(queries, qi, DIMS), 10))
    exactFiltered = Array.from({ length: QUERIES }, (_, qi) => bruteForce(data, DIMS, row(queries, qi, DIMS), 10, i => common[i]!))
    // flatScanLimit 0: no filtered query is answered by an exact scan, so the HNSW plans are under test.
    single = build({ flatScanLimit: 0 })
    sharded = build({ maxShardSize: 5_000, flatScanLimit: 0 })
  }, 60_000)

  it('recall@10 >= 0.95 in one shard', () => {
    expect(single.stats().groups[0]!.shards).toHaveLength(1)
    const recall = recallAt(exact, search(single))
    expect(recall).toBeGreaterThanOrEqual(0.95)
  })

  it('recall@10 >= 0.95 with the group split into 4 shards, fanned out and merged', () => {
    const shards = sharded.stats().groups[0]!.shards
    expect(shards.map(s => s.live)).toEqual([5_000, 5_000, 5_000, 5_000])
    expect(recallAt(exact, search(sharded))).toBeGreaterThanOrEqual(0.95)
  })

  it('recall@10 >= 0.95 with a broad skills filter (case-insensitive), post-filtered, k results back', () => {
    for (const index of [single, sharded]) {
      const before = index.plans()
      const got = search(index, { skills: ['COMMON'] })
      for (const g of got) expect(g).toHaveLength(10)
      expect(recallAt(exactFiltered, got)).toBeGreaterThanOrEqual(0.95)
      // 30% of agents pass: the unfiltered top-ef holds ~45 of them, so no search needs the filter inside HNSW.
      expect(index.plans()['post-filter'] - before['post-filter']).toBe(QUERIES)
    }
    // The exact scan (what a rare skill gets automatically) matches brute force exactly.
    expect(recallAt(exactFiltered, search(single, { skills: ['common'] }, true))).toBe(1)
  })

  it('a narrow filter (1%, scan disabled) runs inside the HNSW search: recall@10 >= 0.95, k results back', () => {
    const expected = Array.from({ length: QUERIES }, (_, qi) => bruteForce(data, DIMS, row(queries, qi, DIMS), 10, i => scarce[i]!))
    for (const index of [single, sharded]) {
      const before = index.plans()
      const got = search(index, { skills: ['scarce'] })
      for (const g of got) expect(g).toHaveLength(10)
      expect(recallAt(expected, got)).toBeGreaterThanOrEqual(0.95)
      expect(index.plans()['in-filter'] - before['in-filter']).toBe(QUERIES)
    }
  })

  it('a broad filter unlike the query\'s neighbourhood falls back from post-filter to in-filter and still finds k', () => {
    const q = row(queries, 0, DIMS)
    const expected = bruteForce(data, DIMS, q, 10, i => far[i]!)
    for (const index of [single, sharded]) {
      const before = index.plans()
      const got = index.search({ vector: q, k: 10, filter: { skills: ['far'] } }).map(h => h.agent)
      expect(index.plans()['post-filter-missed'] - before['post-filter-missed']).toBe(1)
      expect(got).toHaveLength(10)
      expect(recallAt([expected], [got])).toBeGreaterThanOrEqual(0.9)
    }
  })

  it('a rare skill is answered by an exact scan of the agents that have it', () => {
    const index = new CapabilityIndex({ dims: DIMS, model: 'test-128' })
    for (let i = 0; i < 3000; i++) index.upsert(record(`agent-${i}`, row(data, i, DIMS), { skills: i % 100 === 0 ? ['rare'] : ['x'] }))
    const rare = Array.from({ length: 20 }, (_, qi) => bruteForce(data.subarray(0, 3000 * DIMS), DIMS, row(queries, qi, DIMS), 10, i => i % 100 === 0))
    const got = Array.from({ length: 20 }, (_, qi) => index.search({ vector: row(queries, qi, DIMS), k: 10, filter: { skills: ['rare'] } }).map(h => h.agent))
    expect(recallAt(rare, got)).toBe(1)
    expect(index.search({ vector: row(queries, 0, DIMS), k: 10, filter: { skills: ['nobody-has-this'] } })).toEqual([])
  })

  it('re-ranks the nearest candidates by cost: score = similarity − w·cost/(1+cost)', () => {
    const q = row(queries, 0, DIMS)
    const plain = single.search({ vector: q, k: 20 })
    const ranked = single.search({ vector: q, k: 10, costWeight: 0.5 })
    const byId = new Map(plain.map(h => [h.agent, h]))
    for (const h of ranked) {
      expect(byId.has(h.agent)).toBe(true) // chosen among the 2k nearest
      expect(h.score).toBeCloseTo(h.similarity - 0.5 * h.cost / (1 + h.cost), 9)
    }
    for (let i = 1; i < ranked.length; i++) expect(ranked[i - 1]!.score).toBeGreaterThanOrEqual(ranked[i]!.score)
    const expected = plain.map(h => ({ a: h.agent, s: h.similarity - 0.5 * h.cost / (1 + h.cost) }))
      .sort((a, b) => b.s - a.s).slice(0, 10).map(x => x.a)
    expect(ranked.map(h => h.agent)).toEqual(expected)
  })
})

// ---- replace, remove, grow ----------------------------------------------------------------------

describe('capability index: replace, remove, grow', () => {
  const DIMS = 16
  const basis = latentBasis(DIMS, 4, seeded(3))
  const vectorOf = (seed: number): Float32Array => lowRank(1, basis, seeded(seed))
  const AGENTS = Array.from({ length: 24 }, (_, i) => `host/a${i}`)
  const SKILLS = ['alpha', 'beta', 'gamma']

  type Op =
    | { t: 'upsert', agent: number, seed: number, cost: number, skill: number, policy: boolean }
    | { t: 'remove', agent: number }
    | { t: 'search', seed: number, k: number, skill: number | null, costWeight: number }
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ t: fc.constant('upsert' as const), agent: fc.nat(23), seed: fc.nat(1_000_000), cost: fc.integer({ min: 0, max: 20 }), skill: fc.nat(2), policy: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('remove' as const), agent: fc.nat(23) }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('search' as const), seed: fc.nat(1_000_000), k: fc.integer({ min: 1, max: 12 }), skill: fc.option(fc.nat(2), { freq: 2 }), costWeight: fc.constantFrom(0, 0.5) }) }
  )

  it('keeps the index equal to a reference map under random upserts, removals and searches', () => {
    fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 80, size: 'max' }), (ops) => {
      // Tiny shards and capacity: growth, new shards and label reuse happen in every run.
      const index = new CapabilityIndex({ dims: DIMS, model: 'm', initialCapacity: 2, maxShardSize: 8 })
      const ref = new Map<string, { vector: Float32Array, cost: number, skills: string[], policy: string[] }>()
      for (const o of ops) {
        if (o.t === 'upsert') {
          const agent = AGENTS[o.agent]!
          const fields = { vector: vectorOf(o.seed), cost: o.cost, skills: [SKILLS[o.skill]!], policy: o.policy ? ['no-network'] : [] }
          index.upsert(record(agent, fields.vector, fields))
          ref.set(agent, fields)
        } else if (o.t === 'remove') {
          expect(index.remove(AGENTS[o.agent]!)).toBe(ref.delete(AGENTS[o.agent]!))
        } else {
          const q = vectorOf(o.seed)
          const filter = o.skill === null ? undefined : { skills: [SKILLS[o.skill]!] }
          for (const exactScan of [false, true]) {
            const hits = index.search({ vector: q, k: o.k, filter, costWeight: o.costWeight, exact: exactScan })
            expect(new Set(hits.map(h => h.agent)).size).toBe(hits.length)
            for (const h of hits) {
              const r = ref.get(h.agent)
              expect(r).toBeDefined() // never a removed agent
              expect(h.record.cost).toBe(r!.cost) // never stale fields
              expect(h.record.skills).toEqual(r!.skills)
              expect(h.similarity).toBeCloseTo(dot(r!.vector, q), 4) // never a stale vector
              if (filter !== undefined) expect(r!.skills).toContain(filter.skills[0])
            }
            const admitted = [...ref].filter(([, r]) => filter === undefined || r.skills.includes(filter.skills[0]!))
            expect(hits).toHaveLength(Math.min(o.k, admitted.length)) // k back whenever k pass the filter
            if (exactScan) {
              const want = admitted
                .map(([agent, r]) => ({ agent, sim: dot(r.vector, q), cost: r.cost }))
                .sort((a, b) => b.sim - a.sim).slice(0, o.costWeight > 0 ? 2 * o.k : o.k)
                .map(x => ({ ...x, score: x.sim - o.costWeight * x.cost / (1 + x.cost) }))
                .sort((a, b) => b.score - a.score).slice(0, o.k)
              expect(hits.map(h => h.score)).toEqual(want.map(w => expect.closeTo(w.score, 5)))
            }
          }
        }
        expect(new Set(index.agents())).toEqual(new Set(ref.keys()))
        expect(index.size).toBe(ref.size)
        for (const [agent, r] of ref) {
          expect(index.has(agent)).toBe(true)
          expect(index.get(agent)).toMatchObject({ cost: r.cost, skills: r.skills, policy: r.policy })
        }
        // Never more slots than the most agents ever held at once: labels are reused, nothing leaks.
        const slots = index.stats().groups.flatMap(g => g.shards).reduce((n, s) => n + s.slots, 0)
        expect(slots).toBeLessThanOrEqual(AGENTS.length)
      }
    }), { numRuns: 150 })
  })

  it('grows past its initial capacity by doubling, without a rebuild, and finds every point', () => {
    const rand = seeded(5)
    const n = 3000
    const data = lowRank(n, latentBasis(DIMS, 8, rand), rand)
    const index = new CapabilityIndex({ dims: DIMS, model: 'm', initialCapacity: 4 })
    for (let i = 0; i < n; i++) index.upsert(record(`agent-${i}`, row(data, i, DIMS)))
    const [shard] = index.stats().groups[0]!.shards
    expect(shard).toEqual({ live: n, slots: n, capacity: 4096 })
    let found = 0
    for (let i = 0; i < n; i += 10) if (index.search({ vector: row(data, i, DIMS), k: 1 })[0]?.agent === `agent-${i}`) found++
    expect(found / (n / 10)).toBeGreaterThanOrEqual(0.99)
  })

  it('churn reuses deleted labels: slots stay at the peak, search stays right', () => {
    const rand = seeded(6)
    const index = new CapabilityIndex({ dims: DIMS, model: 'm', initialCapacity: 16 })
    const live = new Map<string, Float32Array>()
    for (let i = 0; i < 100; i++) {
      const v = lowRank(1, basis, rand)
      index.upsert(record(`a${i}`, v))
      live.set(`a${i}`, v)
    }
    for (let round = 0; round < 2000; round++) {
      const victim = [...live.keys()][Math.floor(rand() * live.size)]!
      index.remove(victim)
      live.delete(victim)
      const v = lowRank(1, basis, rand)
      index.upsert(record(`n${round}`, v))
      live.set(`n${round}`, v)
    }
    expect(index.stats().groups[0]!.shards).toEqual([{ live: 100, slots: 100, capacity: 128 }])
    let found = 0
    for (const [agent, v] of live) if (index.search({ vector: v, k: 1 })[0]?.agent === agent) found++
    expect(found).toBeGreaterThanOrEqual(98)
  })

  it('replacing moves the point in place; the same vector again only updates fields', () => {
    const index = new CapabilityIndex({ dims: DIMS, model: 'm' })
    const [a, b, c] = [vectorOf(1), vectorOf(2), vectorOf(3)]
    index.upsert(record('x', a, { cost: 1 }))
    index.upsert(record('y', c))
    index.upsert(record('x', b, { cost: 2 }))
    const [top] = index.search({ vector: b, k: 1 })
    expect(top).toMatchObject({ agent: 'x', cost: 2 })
    expect(top!.similarity).toBeCloseTo(1, 5)
    expect(index.search({ vector: a, k: 2 }).find(h => h.agent === 'x')!.similarity).toBeCloseTo(dot(a, b), 5)
    index.upsert(record('x', Float32Array.from(b, v => v * 3), { cost: 5 })) // same direction
    expect(index.get('x')!.cost).toBe(5)
    expect(index.search({ vector: b, k: 1 })[0]!.similarity).toBeCloseTo(1, 5)
    expect(index.stats().groups[0]!.shards[0]!.slots).toBe(2)
  })

  it('keeps one shard group per model: vectors of different models never meet', () => {
    const index = new CapabilityIndex({ dims: DIMS, model: 'm' })
    index.upsert(record('a', vectorOf(1)))
    index.upsert(record('b', Float32Array.from({ length: 8 }, (_, i) => i + 1), { model: 'other-8' }))
    expect(index.search({ vector: vectorOf(1), k: 5 }).map(h => h.agent)).toEqual(['a'])
    expect(index.search({ vector: Float32Array.from({ length: 8 }, () => 1), k: 5, model: 'other-8' }).map(h => h.agent)).toEqual(['b'])
    expect(() => index.upsert(record('c', vectorOf(1), { model: 'other-8' }))).toThrow(/16 dims, expected 8/)
    index.upsert(record('a', Float32Array.from({ length: 8 }, () => 1), { model: 'other-8' })) // moves group
    expect(index.search({ vector: vectorOf(1), k: 5 })).toEqual([])
    expect(index.size).toBe(2)
  })

  it('applies every filter: skills, policy, schema hash, availability, exclusions', () => {
    const index = new CapabilityIndex({ dims: DIMS, model: 'm', flatScanLimit: 0 })
    for (let i = 0; i < 50; i++) {
      index.upsert(record(`a${i}`, vectorOf(i), {
        skills: i % 2 === 0 ? ['Even', 'x'] : ['x'], policy: i % 3 === 0 ? ['no-network'] : [], schemaHash: i % 5 === 0 ? 'AA' : 'bb'
      }))
    }
    const q = vectorOf(99)
    const ids = (filter: SearchFilter): number[] => index.search({ vector: q, k: 50, filter }).map(h => Number(h.agent.slice(1))).sort((a, b) => a - b)
    expect(ids({ skills: ['even'] }).every(i => i % 2 === 0)).toBe(true)
    expect(ids({ skills: ['even'] })).toHaveLength(25)
    expect(ids({ skills: ['even', 'X'], policy: ['no-network'] })).toEqual([0, 6, 12, 18, 24, 30, 36, 42, 48])
    expect(ids({ schemaHash: 'aa' })).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40, 45])
    expect(ids({ schemaHash: 'aa', available: a => a !== 'a10', exclude: new Set(['a20']) })).toEqual([0, 5, 15, 25, 30, 35, 40, 45])
    // A throwing availability callback would abort the process inside hnswlib: it surfaces as a normal error.
    expect(() => index.search({ vector: q, k: 5, filter: { available: () => { throw new Error('breaker down') } } })).toThrow('breaker down')
  })

  it('rejects bad input with a reason', () => {
    const index = new CapabilityIndex({ dims: DIMS, model: 'm' })
    expect(() => index.upsert(record('a', new Float32Array(3)))).toThrow(/3 dims, expected 16/)
    expect(() => index.upsert(record('a', Float32Array.from({ length: DIMS }, () => NaN)))).toThrow(/non-finite/)
    expect(() => index.upsert(record('a', vectorOf(1), { cost: -1 }))).toThrow(/cost/)
    expect(() => index.search({ vector: vectorOf(1), k: -1 })).toThrow(/k must be/)
    expect(() => new CapabilityIndex({ dims: 0, model: 'm' })).toThrow(/dims/)
    expect(() => index.updateFields('nobody', { skills: [], policy: [], schemaHash: '', cost: 0, latencyMs: 0, capacity: 1 })).toThrow(/not in the capability index/)
    expect(index.search({ vector: vectorOf(1), k: 3 })).toEqual([])
  })
})

// ---- skill sub-indexes ----------------------------------------------------------------------------

describe('capability index: skill sub-indexes', () => {
  const N = 6000
  const DIMS = 64
  const QUERIES = 100
  const rand = seeded(31)
  const basis = latentBasis(DIMS, 12, rand)
  const data = lowRank(N, basis, rand)
  const queries = lowRank(QUERIES, basis, rand)
  // Independent of the vectors (the hard case for a post-filter): "band" ~10% of agents, inside the
  // default band (300 agents at ef 150 up to a sixth of the group); "tiny" ~1%, below it; "broad"
  // ~40%, above it. Half the agents have the policy flag "no-network".
  const band = Array.from({ length: N }, () => rand() < 0.1)
  const tiny = Array.from({ length: N }, () => rand() < 0.01)
  const broad = Array.from({ length: N }, () => rand() < 0.4)
  // Tied to the vectors instead: "edge", the 30% of agents farthest from the first latent
  // direction. Above the size band, and a query near that direction finds few of them among its
  // nearest (the post-filter misses the sub-indexes chosen by misses are for).
  const along = Array.from({ length: N }, (_, i) => dot(row(data, i, DIMS), basis[0]!))
  const edgeBelow = [...along].sort((a, b) => a - b)[Math.floor(0.3 * N)]!
  const edge = along.map(a => a < edgeBelow)
  const holders = band.filter(Boolean).length
  const build = (options: Partial<ConstructorParameters<typeof CapabilityIndex>[0]> = {}): CapabilityIndex => {
    const index = new CapabilityIndex({ dims: DIMS, model: 'm-64', ...options })
    for (let i = 0; i < N; i++) {
      const skills = [band[i] ? 'Band' : '', tiny[i] ? 'tiny' : '', broad[i] ? 'broad' : '', edge[i] ? 'edge' : '', 'x'].filter(s => s !== '')
      index.upsert(record(`agent-${i}`, row(data, i, DIMS), { skills, policy: i % 2 === 0 ? ['no-network'] : [], cost: i % 5 }))
    }
    index.planSkillIndexes()
    return index
  }
  const search = (index: CapabilityIndex, filter: SearchFilter, exactScan = false): string[][] =>
    Array.from({ length: QUERIES }, (_, qi) => index.search({ vector: row(queries, qi, DIMS), k: 10, filter, exact: exactScan }).map(h => h.agent))
  /** How many of `queries` searches went by `plan`. */
  const plansOf = (index: CapabilityIndex, run: () => unknown): Record<string, number> => {
    const before = index.plans()
    run()
    return Object.fromEntries(Object.entries(index.plans()).map(([plan, n]) => [plan, n - before[plan as keyof typeof before]]).filter(([, n]) => n !== 0))
  }

  let index: CapabilityIndex
  let dir: string
  beforeAll(async () => {
    // Budget 1: at 64 dims a sub-index's fixed memory is worth ~3,300 members (`skill-index.ts`).
    index = build({ skillIndexBudget: 1 })
    dir = await mkdtemp(join(tmpdir(), 'agentmesh-skill-index-'))
  }, 60_000)
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('builds one for a skill in the band only, and the planner searches it: recall@10 >= 0.95 against an exact scan', () => {
    const subs = index.stats().groups[0]!.skillIndexes
    expect(subs.map(s => ({ skill: s.skill, live: s.live }))).toEqual([{ skill: 'band', live: holders }])
    const exact = Array.from({ length: QUERIES }, (_, qi) => bruteForce(data, DIMS, row(queries, qi, DIMS), 10, i => band[i]!))
    for (const filter of [{ skills: ['BAND'] }, { skills: ['band', 'x'], policy: ['no-network'] }]) {
      let got: string[][] = []
      expect(plansOf(index, () => { got = search(index, filter) })).toEqual({ 'skill-index': QUERIES })
      for (const g of got) expect(g).toHaveLength(10)
      expect(recallAt(search(index, filter, true), got)).toBeGreaterThanOrEqual(0.95)
    }
    expect(recallAt(exact, search(index, { skills: ['band'] }, true))).toBe(1)
    // Below the band an exact scan is cheaper; above it a post-filter of the main index finds enough.
    expect(plansOf(index, () => search(index, { skills: ['tiny'] }))).toEqual({ scan: QUERIES })
    expect(Object.keys(plansOf(index, () => search(index, { skills: ['broad'] })))).toContain('post-filter')
  })

  it('with no budget there are none, and the same queries post-filter the main index', () => {
    const none = build({ skillIndexBudget: 0 })
    expect(none.stats().groups[0]!.skillIndexes).toEqual([])
    expect(plansOf(none, () => search(none, { skills: ['band'] }))['skill-index']).toBeUndefined()
  })

  it('the rule: inside the band, smallest skills first up to the budget; a kept one ranks at half its size', () => {
    const options = { minAgents: 300, maxShare: 1 / 6, budget: 0.25, overhead: 0 } // at 3000 agents: 300..500 each, 750 in all
    const sizes = new Map([['a', 320], ['b', 400], ['c', 480], ['too-broad', 900], ['too-rare', 100]])
    expect(chooseSkills(sizes, 3000, new Set(), options)).toEqual(new Set(['a', 'b'])) // c would pass the budget
    // Each sub-index's fixed memory counts against the budget too.
    expect(chooseSkills(sizes, 3000, new Set(), { ...options, overhead: 100 })).toEqual(new Set(['a']))
    // c already has one: it ranks as 240 and stays; a and b no longer fit beside it.
    expect(chooseSkills(sizes, 3000, new Set(['c']), options)).toEqual(new Set(['c']))
    // A kept skill survives a drift past a bound (up to 2 × maxShare, down to minAgents / 2)…
    expect(chooseSkills(new Map([['d', 900], ['e', 160]]), 3000, new Set(['d', 'e']), { ...options, budget: 1 })).toEqual(new Set(['d', 'e']))
    // …which a newcomer of that size does not get, and nothing survives the budget.
    expect(chooseSkills(new Map([['d', 900], ['e', 160]]), 3000, new Set(), { ...options, budget: 1 })).toEqual(new Set())
    expect(chooseSkills(new Map([['too-broad', 900]]), 3000, new Set(['too-broad']), options)).toEqual(new Set())
    expect(chooseSkills(sizes, 3000, new Set(), { ...options, budget: 0 })).toEqual(new Set())
  })

  it('the rule by misses: enough misses and share of searches, at most half the group, kept ones first, its own budget', () => {
    const options = { minAgents: 300, missBudget: 0.5, overhead: 0 } // at 3000 agents: 1500 members in all
    const sizes = new Map([['a', 900], ['b', 600], ['c', 1400], ['huge', 1600], ['sized', 400], ['rare', 200]])
    const counts = new Map([
      ['a', { searches: MISS_MIN / MISS_RATE, misses: MISS_MIN }], // qualifies, just; fewer misses per member than c
      ['b', { searches: 100, misses: MISS_MIN - 1 }], // too few misses
      ['c', { searches: 100, misses: 50 }], // 0.036 per member: first, and a would not fit beside it
      ['huge', { searches: 100, misses: 90 }], // more than half the group
      ['sized', { searches: 100, misses: 90 }], // chosen by size already
      ['rare', { searches: 100, misses: 90 }] // below minAgents: a scan serves it
    ])
    const none = new Set<string>()
    expect(chooseByMisses(counts, sizes, 3000, none, new Set(['sized']), options)).toEqual(new Set(['c']))
    expect(chooseByMisses(counts, sizes, 3000, none, new Set(['sized']), { ...options, missBudget: 1 })).toEqual(new Set(['c', 'a']))
    // The rate counts too: a search more and the misses are below it.
    expect(chooseByMisses(new Map([['a', { searches: MISS_MIN / MISS_RATE + 1, misses: MISS_MIN }]]), sizes, 3000, none, none, options)).toEqual(new Set())
    // A kept one needs no misses (its searches go through it now) and comes first; gone below minAgents / 2 or when it no longer exists.
    expect(chooseByMisses(counts, sizes, 3000, new Set(['a']), new Set(['sized']), options)).toEqual(new Set(['a']))
    expect(chooseByMisses(counts, new Map([...sizes, ['a', 140]]), 3000, new Set(['a']), new Set(['sized']), options)).toEqual(new Set(['c']))
    expect(chooseByMisses(counts, sizes, 3000, new Set(['gone']), new Set(['sized']), options)).toEqual(new Set(['c']))
    expect(chooseByMisses(counts, sizes, 3000, none, none, { ...options, missBudget: 0 })).toEqual(new Set())
  })

  it('a broad skill whose post-filters miss gets a sub-index, built in slices off the search path, kept across save and load', async () => {
    const missing = build({ skillIndexBudget: 1 })
    expect(missing.stats().groups[0]!.skillIndexes.map(s => s.skill)).toEqual(['band'])
    // Queries near the first latent direction, where few "edge" agents are.
    const qrand = seeded(77)
    const near = Array.from({ length: 60 }, () => {
      const q = lowRank(1, basis, qrand)
      for (let d = 0; d < DIMS; d++) q[d] = q[d]! + 2 * basis[0]![d]!
      return unit(q)
    })
    const edgeSearch = (index: CapabilityIndex): string[][] => near.map(q => index.search({ vector: q, k: 10, filter: { skills: ['edge'] } }).map(h => h.agent))
    const before = plansOf(missing, () => edgeSearch(missing))
    expect((before['post-filter'] ?? 0) + (before['post-filter-missed'] ?? 0)).toBe(near.length)
    const { skillIndexBuilds } = missing.stats().groups[0]!
    expect(skillIndexBuilds).toEqual([]) // a search only counts; the choice waits for maintain
    // Slices: each clock tick is one member. A partial graph serves no search.
    let tick = 0
    const clock = (): number => tick++
    expect(missing.maintain(50, clock)).toBe(true)
    const building = missing.stats().groups[0]!.skillIndexBuilds
    expect(building).toEqual([{ skill: 'edge', added: expect.any(Number), queued: edge.filter(Boolean).length, byMisses: true }])
    expect(building[0]!.added).toBeGreaterThan(0)
    expect(building[0]!.added).toBeLessThan(building[0]!.queued)
    expect(plansOf(missing, () => edgeSearch(missing))['skill-index']).toBeUndefined()
    // Changes reach a build in progress: an agent leaves, one joins the skill.
    const leaver = edge.findIndex(Boolean)
    missing.remove(`agent-${leaver}`)
    missing.upsert(record('agent-new', near[0]!, { skills: ['edge'] }))
    // A save in the middle of a build: the build starts again after the load.
    const path = join(dir, 'misses')
    missing.save(path)
    for (const index of [missing, CapabilityIndex.load(path)]) {
      expect(index.stats().groups[0]!.skillIndexBuilds.map(b => b.skill)).toEqual(['edge'])
      while (index.maintain(100, clock));
      const subs = index.stats().groups[0]!.skillIndexes
      expect(subs.map(s => ({ skill: s.skill, live: s.live, byMisses: s.byMisses }))).toEqual([
        { skill: 'band', live: holders, byMisses: false },
        { skill: 'edge', live: edge.filter(Boolean).length, byMisses: true }
      ])
      let got: string[][] = []
      expect(plansOf(index, () => { got = edgeSearch(index) })).toEqual({ 'skill-index': near.length })
      expect(got.every(g => g.length === 10)).toBe(true)
      // Against the exact answer over the index's agents now (the leaver gone, the newcomer in).
      const now = near.map(q => index.search({ vector: q, k: 10, filter: { skills: ['edge'] }, exact: true }).map(h => h.agent))
      expect(recallAt(now, got)).toBeGreaterThanOrEqual(0.95)
      expect(got[0]![0]).toBe('agent-new')
      expect(got.flat()).not.toContain(`agent-${leaver}`)
      // Saved as chosen by misses: a load keeps it, a replan does not drop it.
      index.save(path)
      const again = CapabilityIndex.load(path)
      again.planSkillIndexes()
      expect(again.stats().groups[0]!.skillIndexes.find(s => s.skill === 'edge')?.byMisses).toBe(true)
    }
    // A damaged or hostile file listing builds for every skill: only what fits both budgets starts.
    const metaPath = join(path, 'capability-index.json')
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as { settings: Record<string, number>, groups: Array<{ skillIndexBuilds?: unknown[] }> }
    meta.groups[0]!.skillIndexBuilds = ['x', 'broad', 'tiny', 'band', 'edge', 'nobody'].map(skill => ({ skill, byMisses: true }))
    // Budgets of half a member per agent in all: band and edge (ready, ~2,400) leave room for tiny alone.
    meta.settings.skillIndexBudget = 0.5
    meta.settings.skillIndexMissBudget = 0
    writeFileSync(metaPath, JSON.stringify(meta))
    const loaded = CapabilityIndex.load(path).stats().groups[0]!
    expect(loaded.skillIndexes.map(x => x.skill)).toEqual(['band', 'edge'])
    expect(loaded.skillIndexBuilds.map(b => b.skill)).toEqual(['tiny'])
    meta.groups[0]!.skillIndexBuilds = [{ skill: 42 }]
    writeFileSync(metaPath, JSON.stringify(meta))
    expect(() => CapabilityIndex.load(path)).toThrow(/sub-index build without a skill/)
  }, 60_000)

  it('upserts, moves, skill changes, removals, replans and save/load keep every sub-index equal to its skill\'s agents', async () => {
    const D = 16
    const basis16 = latentBasis(D, 4, seeded(41))
    const vectorOf = (seed: number): Float32Array => lowRank(1, basis16, seeded(seed))
    const AGENTS = Array.from({ length: 30 }, (_, i) => `host/a${i}`)
    const SKILLS = ['alpha', 'beta', 'gamma']
    type Op =
      | { t: 'upsert', agent: number, seed: number, skills: number, sameVector: boolean }
      | { t: 'remove', agent: number }
      | { t: 'plan', build: boolean }
      | { t: 'slice', ticks: number }
      | { t: 'save-load' }
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 2, arbitrary: fc.record({ t: fc.constant('slice' as const), ticks: fc.integer({ min: 1, max: 8 }) }) },
      { weight: 6, arbitrary: fc.record({ t: fc.constant('upsert' as const), agent: fc.nat(29), seed: fc.nat(1_000_000), skills: fc.nat(7), sameVector: fc.boolean() }) },
      { weight: 3, arbitrary: fc.record({ t: fc.constant('remove' as const), agent: fc.nat(29) }) },
      { weight: 2, arbitrary: fc.record({ t: fc.constant('plan' as const), build: fc.boolean() }) },
      { weight: 1, arbitrary: fc.constant({ t: 'save-load' as const }) }
    )
    let checked = 0
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60, size: 'max' }), fc.nat(1_000_000), async (ops, querySeed) => {
      // hnswlib frees an index's native memory (2.5 MiB at least) only in a finalizer, which runs
      // once the event loop turns: let it, or hundreds of runs pile up gigabytes.
      await new Promise(resolve => setImmediate(resolve))
      // Every skill qualifies (the budget covers the fixed memory of three tiny sub-indexes), and no
      // exact scan: each filtered search below goes through a sub-index.
      let index = new CapabilityIndex({ dims: D, model: 'm', initialCapacity: 2, maxShardSize: 8, flatScanLimit: 0, skillIndexMinAgents: 1, skillIndexMaxShare: 1, skillIndexBudget: 1000 })
      const ref = new Map<string, { vector: Float32Array, skills: string[] }>()
      const q = vectorOf(querySeed)
      for (const o of ops) {
        if (o.t === 'upsert') {
          const agent = AGENTS[o.agent]!
          const vector = o.sameVector && ref.has(agent) ? ref.get(agent)!.vector : vectorOf(o.seed)
          const skills = SKILLS.filter((_, b) => (o.skills & (1 << b)) !== 0)
          index.upsert(record(agent, vector, { skills }))
          ref.set(agent, { vector, skills })
        } else if (o.t === 'remove') {
          index.remove(AGENTS[o.agent]!)
          ref.delete(AGENTS[o.agent]!)
        } else if (o.t === 'plan') {
          index.planSkillIndexes(o.build)
        } else if (o.t === 'slice') {
          // A few members of the builds in progress.
          let tick = 0
          index.maintain(o.ticks, () => tick++)
        } else {
          const path = join(dir, 'property')
          index.save(path)
          // A build in progress starts again after the load: the same skills, from the start.
          const restarted = (stats: ReturnType<CapabilityIndex['stats']>): unknown => ({ ...stats, groups: stats.groups.map(g => ({ ...g, skillIndexBuilds: g.skillIndexBuilds.map(b => b.skill) })) })
          const stats = index.stats()
          index = CapabilityIndex.load(path)
          expect(restarted(index.stats())).toEqual(restarted(stats))
        }
        for (const sub of index.stats().groups[0]?.skillIndexes ?? []) {
          const want = [...ref].filter(([, r]) => r.skills.includes(sub.skill))
          expect(sub.live).toBe(want.length)
          if (want.length === 0) continue
          let hits: SearchHit[] = []
          expect(plansOf(index, () => { hits = index.search({ vector: q, k: AGENTS.length, filter: { skills: [sub.skill] } }) })).toEqual({ 'skill-index': 1 })
          expect(new Set(hits.map(h => h.agent))).toEqual(new Set(want.map(([agent]) => agent)))
          for (const h of hits) expect(h.similarity).toBeCloseTo(dot(ref.get(h.agent)!.vector, q), 4) // never a stale vector
          checked++
        }
      }
    }), { numRuns: Number(process.env.SKILL_INDEX_RUNS ?? 100) })
    expect(checked).toBeGreaterThan(500) // the sub-indexes were there to check, not skipped
  })

  it('save and load round-trip the sub-indexes; a version 1 index gets them built from its vectors', () => {
    const path = join(dir, 'round-trip')
    index.save(path)
    expect(readdirSync(path).filter(f => /-skill-\d+\.hnsw$/.test(f))).toHaveLength(1)
    const loaded = CapabilityIndex.load(path)
    expect(loaded.stats()).toEqual(index.stats())
    let got: string[][] = []
    expect(plansOf(loaded, () => { got = search(loaded, { skills: ['band'] }) })).toEqual({ 'skill-index': QUERIES })
    expect(got).toEqual(search(index, { skills: ['band'] })) // the same graph: the same answers

    const metaPath = join(path, 'capability-index.json')
    const text = readFileSync(metaPath, 'utf8')
    const meta = JSON.parse(text) as { version: number, groups: Array<{ skillIndexes?: Array<{ file: string, members: number[] }> }> }
    // A member that does not hold the skill (label 0 of shard 0 is agent-0, which has no "band").
    expect(band[0]).toBe(false)
    const damaged = structuredClone(meta)
    damaged.groups[0]!.skillIndexes![0]!.members.splice(0, 3, 0, 0, 0)
    writeFileSync(metaPath, JSON.stringify(damaged))
    expect(() => CapabilityIndex.load(path)).toThrow(/skill index .* has an inconsistent member/)
    // Version 1 had no sub-indexes: they are built on load.
    const file = meta.groups[0]!.skillIndexes![0]!.file
    delete meta.groups[0]!.skillIndexes
    meta.version = 1
    writeFileSync(metaPath, JSON.stringify(meta))
    unlinkSync(join(path, file))
    const upgraded = CapabilityIndex.load(path)
    expect(upgraded.stats().groups[0]!.skillIndexes.map(s => ({ skill: s.skill, live: s.live }))).toEqual([{ skill: 'band', live: holders }])
    expect(plansOf(upgraded, () => { got = search(upgraded, { skills: ['band'] }) })).toEqual({ 'skill-index': QUERIES })
    expect(recallAt(search(upgraded, { skills: ['band'] }, true), got)).toBeGreaterThanOrEqual(0.95)
    writeFileSync(metaPath, text)
    expect(() => CapabilityIndex.load(path)).toThrow(new RegExp(`lists skill index ${file}, which is missing`))
  })
})

// ---- save and load --------------------------------------------------------------------------------

describe('capability index: save and load', () => {
  const DIMS = 32
  const rand = seeded(21)
  const basis = latentBasis(DIMS, 8, rand)
  const data = lowRank(2000, basis, rand)
  const queries = lowRank(50, basis, rand)
  let dir: string

  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'agentmesh-index-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  const built = (): CapabilityIndex => {
    const index = new CapabilityIndex({ dims: DIMS, model: 'hash-ngram-32@1', maxShardSize: 700, ef: 64 })
    for (let i = 0; i < 2000; i++) index.upsert(record(`agent-${i}`, row(data, i, DIMS), { skills: i % 3 === 0 ? ['tri'] : ['x'], cost: i % 4 }))
    for (let i = 0; i < 2000; i += 7) index.remove(`agent-${i}`)
    index.upsert(record('foreign', Float32Array.from({ length: 4 }, (_, i) => i + 1), { model: 'other-4' }))
    return index
  }

  it('round-trips: the loaded index gives identical results and keeps reusing labels', () => {
    const index = built()
    const path = join(dir, 'round-trip')
    index.save(path)
    const loaded = CapabilityIndex.load(path, { model: 'hash-ngram-32@1', dims: DIMS })
    expect(loaded.stats()).toEqual(index.stats())
    expect(loaded.get('agent-1')).toEqual(index.get('agent-1'))
    for (let qi = 0; qi < 50; qi++) {
      const q = row(queries, qi, DIMS)
      for (const query of [{ vector: q, k: 10 }, { vector: q, k: 10, filter: { skills: ['tri'] }, costWeight: 0.3 }]) {
        expect(loaded.search(query)).toEqual(index.search(query))
      }
    }
    expect(loaded.search({ vector: [1, 2, 3, 4], k: 1, model: 'other-4' })[0]!.agent).toBe('foreign')
    const slotsBefore = loaded.stats().groups[0]!.shards.reduce((n, s) => n + s.slots, 0)
    loaded.upsert(record('new-one', row(data, 0, DIMS)))
    expect(loaded.stats().groups[0]!.shards.reduce((n, s) => n + s.slots, 0)).toBe(slotsBefore)
    expect(loaded.search({ vector: row(data, 0, DIMS), k: 1 })[0]!.agent).toBe('new-one')
  })

  it('loads the CPU-tuned build only for the installed version on a CPU with every flag it was built with', () => {
    const manifest = { version: '3.0.0', sourceHash: 'ab', cxxflags: '-O3 -march=native', cpuFlags: ['sse4_2', 'avx2', 'avx512f'] }
    expect(nativeVerdict(manifest, '3.0.0', new Set(['fpu', 'sse4_2', 'avx2', 'avx512f']))).toEqual({ ok: true, why: 'built with -O3 -march=native' })
    expect(nativeVerdict(manifest, '3.0.1', new Set(['sse4_2', 'avx2', 'avx512f'])).why).toMatch(/of hnswlib-node 3.0.0, 3.0.1 is installed/)
    expect(nativeVerdict(manifest, '3.0.0', new Set(['sse4_2', 'avx2']))).toEqual({ ok: false, why: 'this CPU lacks avx512f, which the CPU-tuned build may use' })
    expect(nativeVerdict(manifest, '3.0.0', undefined).ok).toBe(false)
  })

  it('both hnswlib builds read the same files: the portable one loads what this process saved and finds the same agents', async () => {
    const index = built()
    const path = join(dir, 'cross-build')
    index.save(path)
    const queryCount = 20
    const mine = Array.from({ length: queryCount }, (_, qi) => index.search({ vector: row(queries, qi, DIMS), k: 10 }).map(h => h.agent))
    const script = `
      const { CapabilityIndex, hnswlibBuild } = await import(${JSON.stringify(new URL('../../capability-index/index.ts', import.meta.url).href)})
      const queries = ${JSON.stringify(Array.from({ length: queryCount }, (_, qi) => [...row(queries, qi, DIMS)]))}
      const index = CapabilityIndex.load(${JSON.stringify(path)}, { model: 'hash-ngram-32@1', dims: ${DIMS} })
      console.log(JSON.stringify({ build: hnswlibBuild, found: queries.map(q => index.search({ vector: q, k: 10 }).map(h => h.agent)) }))`
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, AGENTMESH_HNSWLIB: 'portable' } })
    const other = JSON.parse(stdout) as { build: { native: boolean, why: string }, found: string[][] }
    expect(other.build).toEqual({ native: false, why: 'AGENTMESH_HNSWLIB=portable' })
    // Same graph, same ef: the walk is the same up to float rounding in the distances.
    expect(recallAt(mine, other.found)).toBeGreaterThanOrEqual(0.98)
  })

  it('a second save replaces the first and leaves no stale files', () => {
    const index = built()
    const path = join(dir, 'twice')
    index.save(path)
    index.remove('agent-1')
    index.save(path)
    const files = readdirSync(path)
    expect(files.filter(f => f.endsWith('.hnsw'))).toHaveLength(4) // 3 shards of the main model + 1 of other-4
    expect(files.filter(f => f.includes('.tmp'))).toEqual([])
    expect(CapabilityIndex.load(path).has('agent-1')).toBe(false)
  })

  it('refuses another model, other dims, a missing directory, file or format version, with a clear message', () => {
    const path = join(dir, 'refuse')
    built().save(path)
    expect(() => CapabilityIndex.load(path, { model: 'openai:text-embedding-3-small' }))
      .toThrow(/built with embedding model "hash-ngram-32@1", but this peer embeds with "openai:text-embedding-3-small"/)
    expect(() => CapabilityIndex.load(path, { dims: 384 })).toThrow(/32-dimensional vectors, but this peer's embedder gives 384/)
    expect(() => CapabilityIndex.load(join(dir, 'nope'))).toThrow(IndexLoadError)
    expect(() => CapabilityIndex.load(join(dir, 'nope'))).toThrow(/the directory does not exist/)
    const meta = join(path, 'capability-index.json')
    const text = readFileSync(meta, 'utf8')
    writeFileSync(meta, text.replace(`"version":${INDEX_FORMAT_VERSION}`, '"version":99'))
    expect(() => CapabilityIndex.load(path)).toThrow(/format version 99; this peer reads version 1 or 2/)
    writeFileSync(meta, text)
    const shard = readdirSync(path).find(f => f.endsWith('.hnsw'))!
    unlinkSync(join(path, shard))
    expect(() => CapabilityIndex.load(path)).toThrow(new RegExp(`lists shard ${shard}, which is missing`))
    unlinkSync(meta)
    expect(() => CapabilityIndex.load(path)).toThrow(/capability-index.json is missing/)
  })

  it('refuses a shard file whose vectors have other dims than its metadata says', () => {
    const path = join(dir, 'dims')
    built().save(path)
    const meta = join(path, 'capability-index.json')
    const parsed = JSON.parse(readFileSync(meta, 'utf8')) as { groups: Array<{ dims: number }>, settings: { dims: number } }
    parsed.groups[0]!.dims = 64
    parsed.settings.dims = 64
    writeFileSync(meta, JSON.stringify(parsed))
    expect(() => CapabilityIndex.load(path)).toThrow(/holds 32-dimensional vectors, expected 64/)
  })
})

// ---- the hash embedder ----------------------------------------------------------------------------

describe('hash embedder', () => {
  const embedder = new HashEmbedder()

  it('is deterministic to the bit and L2-normalised', async () => {
    const text = 'Sorts a list of numbers or strings in ascending order, café naïve — TL;DR'
    const [a] = await embedder.embed([text])
    const [b] = await new HashEmbedder().embed([text])
    expect(Buffer.from(a!.buffer).equals(Buffer.from(b!.buffer))).toBe(true)
    expect(embedder.model).toBe('hash-ngram-384@1')
    expect(a).toHaveLength(384)
    expect(Math.sqrt(dot(a!, a!))).toBeCloseTo(1, 6)
    expect(new HashEmbedder({ dims: 64 }).model).toBe('hash-ngram-64@1')
    const [empty] = await embedder.embed(['the of and'])
    expect(empty!.every(x => x === 0)).toBe(true) // nothing but stopwords: no direction
  })

  // Written the way users ask, avoiding the descriptions' own wording where possible.
  const requests: Array<[string, string]> = [
    ['arithmetic', "what's 17 times 23 plus 4"],
    ['arithmetic', 'work out 15% of 240 for me'],
    ['arithmetic', 'I need to multiply 3.5 by 12 and divide by 7'],
    ['arithmetic', 'what is the square root of 1764'],
    ['unit-convert', 'how many kilometres is 26 miles'],
    ['unit-convert', 'turn 72 degrees fahrenheit into celsius'],
    ['unit-convert', 'how much is 5 pounds in kilograms'],
    ['unit-convert', 'how many megabytes are in 3 gigabytes'],
    ['text-stats', 'count the words in this paragraph'],
    ['text-stats', 'how long will it take to read this essay'],
    ['text-stats', 'which words show up most often in my essay'],
    ['text-stats', 'how many characters are in this tweet'],
    ['sort', 'put these names in alphabetical order'],
    ['sort', 'arrange these prices from lowest to highest'],
    ['sort', 'remove the duplicates from this list and order it'],
    ['sort', 'rank these scores from biggest to smallest'],
    ['json-transform', 'pull the email field out of this JSON'],
    ['json-transform', 'rename the keys in these records and drop the password property'],
    ['json-transform', 'get the nested address object from this payload'],
    ['json-transform', 'keep only the id and name attributes of each item'],
    ['summarize', 'give me the gist of this article'],
    ['summarize', 'tl;dr this long report'],
    ['summarize', 'shorten this email to its main points'],
    ['summarize', 'what are the highlights of this long paper']
  ]

  it(`finds the right demo agent first for ${requests.length} paraphrased requests`, async () => {
    const index = new CapabilityIndex({ dims: embedder.dims, model: embedder.model })
    for (const kind of demoKinds) {
      const d = createAgent({ kind }).describe()
      const [vector] = await embedder.embed([capabilityText(d)])
      index.upsert({ agent: `host/${kind}`, vector: vector!, skills: d.skills, policy: d.policy, schemaHash: '', cost: d.costPerCall, latencyMs: d.latencyMs, capacity: d.capacity })
    }
    const vectors = await embedder.embed(requests.map(([, q]) => q))
    const misses = requests.flatMap(([want, q], i) => {
      const top = index.search({ vector: vectors[i]!, k: 1 })[0]?.agent
      return top === `host/${want}` ? [] : [`"${q}" → ${top ?? 'nothing'} (wanted ${want})`]
    })
    expect(misses).toEqual([])
    for (const kind of demoKinds) expect(requests.filter(([k]) => k === kind).length).toBeGreaterThanOrEqual(2)
  })
})

// ---- the OpenAI-compatible embedder against a real local server ----------------------------------

describe('OpenAI-compatible embedder', () => {
  const DIMS = 8
  let server: Server
  let baseUrl: string
  let mode: 'ok' | '500' | 'dims' | 'badjson' | 'shape' | 'hang' = 'ok'
  const seen: Array<{ auth: string | undefined, url: string | undefined, body: { model: string, input: string[] } }> = []

  /** Deterministic, un-normalised, and returned in reverse order (with "index") to test reordering. */
  const fakeVector = (text: string): number[] => Array.from({ length: DIMS }, (_, i) => (i === 0 ? text.length : i))

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let raw = ''
      req.on('data', (c: Buffer) => { raw += c.toString() })
      req.on('end', () => {
        const body = JSON.parse(raw) as { model: string, input: string[] }
        seen.push({ auth: req.headers.authorization, url: req.url, body })
        if (req.url !== '/v1/embeddings' || req.method !== 'POST') { res.writeHead(404).end('not found'); return }
        if (mode === 'hang') return
        if (mode === '500') { res.writeHead(500, { 'content-type': 'text/plain' }).end('model overloaded, try later'); return }
        if (mode === 'badjson') { res.writeHead(200, { 'content-type': 'application/json' }).end('{"data": [oops'); return }
        if (mode === 'shape') { res.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"list"}'); return }
        const data = body.input.map((t, index) => ({ object: 'embedding', index, embedding: mode === 'dims' ? [1, 2, 3] : fakeVector(t) })).reverse()
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data, model: body.model }))
      })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('no port')
    baseUrl = `http://127.0.0.1:${address.port}`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })

  it('batches, sends the model and the bearer key, keeps input order and L2-normalises', async () => {
    mode = 'ok'
    seen.length = 0
    const embedder = new OpenAiEmbedder({ baseUrl, model: 'test-model', apiKey: 'sk-test', dims: DIMS, batchSize: 64 })
    expect(embedder.model).toBe('openai:test-model')
    const texts = Array.from({ length: 150 }, (_, i) => 'x'.repeat(i + 1))
    const vectors = await embedder.embed(texts)
    expect(seen.map(s => s.body.input.length)).toEqual([64, 64, 22])
    expect(seen.every(s => s.auth === 'Bearer sk-test' && s.body.model === 'test-model' && s.url === '/v1/embeddings')).toBe(true)
    expect(vectors).toHaveLength(150)
    vectors.forEach((v, i) => {
      expect(Math.sqrt(dot(v, v))).toBeCloseTo(1, 6)
      const raw = fakeVector(texts[i]!)
      expect(v[0]).toBeCloseTo(raw[0]! / Math.sqrt(dot(raw, raw)), 6)
    })
  })

  it('reads its configuration from the environment, sends no key when none is set, accepts a /v1 base', async () => {
    mode = 'ok'
    seen.length = 0
    const embedder = new OpenAiEmbedder({ env: { AGENTMESH_EMBEDDINGS_URL: `${baseUrl}/v1/`, AGENTMESH_EMBEDDINGS_MODEL: 'env-model', AGENTMESH_EMBEDDINGS_DIMS: String(DIMS) } })
    await embedder.embed(['hello'])
    expect(seen[0]).toMatchObject({ auth: undefined, url: '/v1/embeddings', body: { model: 'env-model', input: ['hello'] } })
    expect(() => new OpenAiEmbedder({ env: {} })).toThrow(/AGENTMESH_EMBEDDINGS_URL/)
    expect(() => new OpenAiEmbedder({ env: { AGENTMESH_EMBEDDINGS_URL: baseUrl, AGENTMESH_EMBEDDINGS_MODEL: 'm' } })).toThrow(/AGENTMESH_EMBEDDINGS_DIMS/)
  })

  it('says what went wrong: HTTP status with body, wrong dims, malformed JSON, bad shape, timeout', async () => {
    const embedder = new OpenAiEmbedder({ baseUrl, model: 'm', dims: DIMS, timeoutMs: 300 })
    mode = '500'
    await expect(embedder.embed(['a'])).rejects.toThrow(/HTTP 500: model overloaded, try later/)
    mode = 'dims'
    await expect(embedder.embed(['a'])).rejects.toThrow('embeddings from openai:m have 3 dims, expected 8')
    mode = 'badjson'
    await expect(embedder.embed(['a'])).rejects.toThrow(/not JSON: \{"data": \[oops/)
    mode = 'shape'
    await expect(embedder.embed(['a'])).rejects.toThrow(/no "data" list/)
    mode = 'hang'
    await expect(embedder.embed(['a'])).rejects.toThrow(EmbeddingError)
    await expect(embedder.embed(['a'])).rejects.toThrow(/timed out after 300 ms/)
    mode = 'ok'
  })
})

// ---- keeping the index in step with the capability table -----------------------------------------

/** Wraps an embedder so each call waits until the test releases (or fails) it. */
class GatedEmbedder implements Embedder {
  readonly model: string
  readonly dims: number
  readonly calls: Array<{ texts: string[], release: () => void, fail: (err: Error) => void }> = []
  readonly #inner: Embedder

  constructor (inner: Embedder) {
    this.#inner = inner
    this.model = inner.model
    this.dims = inner.dims
  }

  async embed (texts: string[]): Promise<Float32Array[]> {
    return await new Promise((resolve, reject) => {
      this.calls.push({ texts, release: () => { void this.#inner.embed(texts).then(resolve) }, fail: reject })
    })
  }
}

describe('index sync with the capability table', () => {
  const T0 = 1_700_000_000_000
  const embedder = new HashEmbedder({ dims: 128 })
  let hosts: Signer[]
  beforeAll(async () => { hosts = await makeSigners(2) })

  /** Gossip from one table to another; the receiver's table events. */
  const deliver = (to: CapabilityTable, effects: ReturnType<CapabilityTable['advertise']>, now: number): TableEvent[] =>
    broadcasts(effects).flatMap(b => events(to.receiveGossip(b, 'peer', now).effects))

  const similarityTo = async (index: CapabilityIndex, agent: string, text: string): Promise<number | undefined> => {
    const [q] = await embedder.embed([text])
    return index.search({ vector: q!, k: 10 }).find(h => h.agent === agent)?.similarity
  }

  it('a flood of new agents is indexed in turns: the event loop runs between upserts, and at most 8 embeds are in flight', async () => {
    const index = new CapabilityIndex({ dims: embedder.dims, model: embedder.model })
    let inFlight = 0
    let most = 0
    const tracking: Embedder = {
      model: embedder.model,
      dims: embedder.dims,
      embed: async (t) => { most = Math.max(most, ++inFlight); try { return await embedder.embed(t) } finally { inFlight-- } }
    }
    const sync = new IndexSync(index, tracking)
    const host = table(hosts[0]!)
    const receiver = table(hosts[1]!, { maxAgentsPerHost: 1000 })
    const added = Array.from({ length: 400 }, (_, i) => deliver(receiver, host.advertise(localAgent(`a${i}`, { description: `agent number ${i} does work` }), T0), T0)).flat()
    expect(added).toHaveLength(400)
    const done = Promise.all(added.map(async e => { await sync.handle(e) }))
    // A timer set now fires while the flood is being indexed, not after it: the loop was not held.
    const sizeWhenTimerRan = await new Promise<number>(resolve => { setTimeout(() => resolve(index.size), 0) })
    expect(sizeWhenTimerRan).toBeLessThan(400)
    await done
    expect(index.size).toBe(400)
    expect(most).toBeLessThanOrEqual(8)
    expect(most).toBeGreaterThan(1)
  })

  it('with cpuShare, upserts use at most that share of the time after a small burst, and the flood is still indexed in full', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'setImmediate', 'Date'] })
    try {
      const index = new CapabilityIndex({ dims: embedder.dims, model: embedder.model })
      const upsert = index.upsert.bind(index)
      let upserts = 0
      // Each upsert "costs" 100 ms of the clock the budget reads.
      index.upsert = (r) => { upsert(r); upserts++; vi.setSystemTime(Date.now() + 100) }
      const sync = new IndexSync(index, embedder, { cpuShare: 0.25, clock: () => Date.now() })
      const host = table(hosts[0]!)
      const receiver = table(hosts[1]!, { maxAgentsPerHost: 1000 })
      const added = Array.from({ length: 30 }, (_, i) => deliver(receiver, host.advertise(localAgent(`a${i}`, { description: `agent number ${i} does work` }), T0), T0)).flat()
      const start = Date.now()
      const done = Promise.all(added.map(async e => { await sync.handle(e) }))
      for (let step = 0; step < 200 && index.size < 30; step++) {
        await vi.advanceTimersByTimeAsync(97)
        // The burst (250 ms), the share of the time since, and the one upsert that overdrew.
        expect(upserts * 100).toBeLessThanOrEqual(250 + 0.25 * (Date.now() - start) + 100)
      }
      await done
      expect(index.size).toBe(30)
      // 3 s of upserts at a quarter of the time: about 12 s went by, not 3.
      expect(Date.now() - start).toBeGreaterThan(10_000)
    } finally {
      vi.useRealTimers()
    }
    expect(() => new IndexSync(new CapabilityIndex({ dims: embedder.dims, model: embedder.model }), embedder, { cpuShare: 0 })).toThrow(/cpuShare/)
  })

  it('maintain builds sub-indexes within the same CPU share, a slice at a time', () => {
    // Each clock read is 1 ms, so each member added costs at least 1 ms of the budget.
    let now = 0
    const clock = (): number => now++
    // 600 agents at least: the replans during the inserts choose nothing, so the build starts at planSkillIndexes with all 600 queued.
    const index = new CapabilityIndex({ dims: embedder.dims, model: embedder.model, skillIndexMinAgents: 600, skillIndexMaxShare: 1, skillIndexBudget: 1000 })
    const rand = seeded(5)
    for (let i = 0; i < 600; i++) index.upsert(record(`agent-${i}`, unit(Float32Array.from({ length: embedder.dims }, () => rand() - 0.5)), { skills: ['common'] }))
    index.planSkillIndexes(false)
    const sync = new IndexSync(index, embedder, { cpuShare: 0.5, clock })
    const added = (): number => index.stats().groups[0]!.skillIndexBuilds[0]?.added ?? index.stats().groups[0]!.skillIndexes[0]!.live
    expect(added()).toBe(0)
    const start = now
    let calls = 0
    let idle = 0
    for (let more = true; more;) {
      const before = added()
      more = sync.maintain()
      const slice = added() - before
      // At most a 20 ms slice per call, and within the burst (250 ms) plus half the time since.
      expect(slice).toBeLessThanOrEqual(20)
      expect(added()).toBeLessThanOrEqual(250 + 0.5 * (now - start) + 20)
      if (slice === 0) idle++
      if (++calls > 100_000) throw new Error('maintain never finished')
    }
    expect(idle).toBeGreaterThan(0) // the budget ran out and it waited
    // 600 ms of work at half a core after a 250 ms burst: at least 700 ms went by.
    expect(now - start).toBeGreaterThan(700)
    expect(index.stats().groups[0]!.skillIndexes).toEqual([{ skill: 'common', live: 600, slots: 600, capacity: 600, byMisses: false }])
    expect(index.plans()['skill-index']).toBe(0)
    index.search({ vector: new Float32Array(embedder.dims).fill(1), k: 5, filter: { skills: ['common'] } })
    expect(index.plans()['skill-index']).toBe(1)
  })

  it('a failing maintenance step is said once and not retried every tick', () => {
    const index = new CapabilityIndex({ dims: embedder.dims, model: embedder.model })
    let calls = 0
    index.maintain = () => { calls++; throw new Error('out of memory') }
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      const sync = new IndexSync(index, embedder)
      expect(sync.maintain()).toBe(false)
      expect(sync.maintain()).toBe(false)
      expect(calls).toBe(1)
      expect(warn).toHaveBeenCalledTimes(1)
      expect(String(warn.mock.calls[0]![0])).toMatch(/sub-index maintenance failed .*out of memory/)
    } finally {
      warn.mockRestore()
    }
  })

  it('follows added, updated (re-embedding only when the text changes), withdrawn and expired agents', async () => {
    const host = table(hosts[0]!, { ttlMs: 30_000 })
    const peer = table(hosts[1]!)
    const index = new CapabilityIndex({ dims: embedder.dims, model: embedder.model })
    const texts: string[] = []
    const counting: Embedder = { model: embedder.model, dims: embedder.dims, embed: async (t) => { texts.push(...t); return await embedder.embed(t) } }
    const sync = new IndexSync(index, counting)
    const feed = async (es: TableEvent[]): Promise<void> => { for (const e of es) await sync.handle(e) }
    const calc = `${hosts[0]!.peerId}/calc`
    const conv = `${hosts[0]!.peerId}/convert`

    await feed(deliver(peer, host.advertise(localAgent('calc', { description: 'evaluates arithmetic expressions', skills: ['math'], costPerCall: 0.5 }), T0), T0))
    await feed(deliver(peer, host.advertise(localAgent('convert', { description: 'converts miles to kilometres', skills: ['units'] }), T0), T0))
    expect(new Set(index.agents())).toEqual(new Set([calc, conv]))
    expect(index.get(calc)).toMatchObject({ skills: ['math'], cost: 0.5, policy: ['deterministic'] })
    expect(index.get(calc)!.schemaHash).toMatch(/^[0-9a-f]{64}$/)
    expect(await similarityTo(index, calc, 'evaluates arithmetic expressions\nmath')).toBeCloseTo(1, 5)
    expect(texts).toHaveLength(2)

    // A new description: re-embedded, the vector moves.
    await feed(deliver(peer, host.advertise(localAgent('calc', { description: 'sorts lists alphabetically', skills: ['math'], costPerCall: 0.7 }), T0 + 1), T0 + 1))
    expect(index.get(calc)!.cost).toBe(0.7)
    expect(await similarityTo(index, calc, 'sorts lists alphabetically\nmath')).toBeCloseTo(1, 5)
    expect(texts).toHaveLength(3)

    // The periodic re-issue (a new version, same text): fields follow, no embedding call.
    // calc was re-issued at T0 + 1, so both are due a third of the 30 s lifetime after T0 + 1.
    const refreshed = deliver(peer, host.tick(T0 + 10_001), T0 + 10_001)
    expect(refreshed.filter(e => e.type === 'updated')).toHaveLength(2)
    await feed(refreshed)
    expect(texts).toHaveLength(3)
    expect(index.get(calc)!.cost).toBe(0.7)

    await feed(deliver(peer, host.withdraw('convert', T0 + 11_000), T0 + 11_000))
    expect(index.has(conv)).toBe(false)
    const expired = events(peer.tick(T0 + 10_001 + 30_000))
    expect(expired).toContainEqual({ type: 'removed', agent: calc, reason: 'expired' })
    await feed(expired)
    expect(index.size).toBe(0)
  })

  /** Two signed versions of one agent, with different texts and costs. */
  const twoVersions = (): { agent: string, v1: SignedVcv, v2: SignedVcv } => {
    const host = table(hosts[0]!)
    const pick = (effects: ReturnType<CapabilityTable['advertise']>): SignedVcv => {
      const e = events(effects).find(x => x.type === 'advertised')
      if (e?.type !== 'advertised') throw new Error('no advertisement')
      return e.vcv
    }
    const v1 = pick(host.advertise(localAgent('calc', { description: 'version one: evaluates arithmetic', costPerCall: 1 }), T0))
    const v2 = pick(host.advertise(localAgent('calc', { description: 'version two: summarizes articles', costPerCall: 2 }), T0 + 1))
    return { agent: v1.body.agent, v1, v2 }
  }

  it('a removal during the embed of an add leaves nothing behind', async () => {
    const gated = new GatedEmbedder(embedder)
    const index = new CapabilityIndex({ dims: embedder.dims, model: embedder.model })
    const sync = new IndexSync(index, gated)
    const { agent, v1 } = twoVersions()
    const adding = sync.onAdded(v1)
    sync.onRemoved(agent)
    gated.calls[0]!.release()
    await adding
    await sync.idle()
    expect(index.has(agent)).toBe(false)
  })

  it('an older version whose embed finishes last does not overwrite the newer one', async () => {
    for (const order of [[1, 0], [0, 1]]) {
      const gated = new GatedEmbedder(embedder)
      const index = new CapabilityIndex({ dims: embedder.dims, model: embedder.model })
      const sync = new IndexSync(index, gated)
      const { agent, v1, v2 } = twoVersions()
      void sync.onAdded(v1)
      void sync.onUpdated(v2)
      for (const i of order) gated.calls[i]!.release()
      await sync.idle()
      expect(index.get(agent)!.cost).toBe(2)
      expect(await similarityTo(index, agent, capabilityText(v2.body))).toBeCloseTo(1, 5)
      // A replayed older version changes nothing.
      await sync.onUpdated(v1)
      expect(gated.calls).toHaveLength(2)
      expect(index.get(agent)!.cost).toBe(2)
    }
  })

  it('a failed embed is reported; the agent keeps its old vector but takes the new fields', async () => {
    const gated = new GatedEmbedder(embedder)
    const index = new CapabilityIndex({ dims: embedder.dims, model: embedder.model })
    const errors: string[] = []
    const sync = new IndexSync(index, gated, { onError: (err, agent) => errors.push(`${agent}: ${err.message}`) })
    const { agent, v1, v2 } = twoVersions()
    const first = sync.onAdded(v1)
    gated.calls[0]!.release()
    await first
    const second = sync.onUpdated(v2)
    gated.calls[1]!.fail(new Error('endpoint down'))
    await second
    expect(errors).toEqual([`${agent}: endpoint down`])
    expect(index.get(agent)!.cost).toBe(2)
    expect(await similarityTo(index, agent, capabilityText(v1.body))).toBeCloseTo(1, 5)
  })

  it('refuses an embedder of another model than the index', () => {
    const index = new CapabilityIndex({ dims: 384, model: 'openai:text-embedding-3-small' })
    expect(() => new IndexSync(index, embedder)).toThrow(/index is for openai:text-embedding-3-small \(384 dims\) but the embedder is hash-ngram-128@1/)
  })
})
