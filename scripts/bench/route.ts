/**
 * Routing one subtask among many VCVs, as the router does it: the capability index's search
 * (top-10, a required skill as filter, cost re-rank), then hybrid LinUCB choosing among the top
 * L = 3 with their live state (the beacon's answers, synthetic here), against a brute-force scan
 * over the same vectors with the same filter and re-rank, measured in the same run. The bandit
 * learns from a reward after every decision (outside the timing, as feedback arrives later).
 * Also reports recall@10 of the index against the scan.
 *
 * Data: 100k (quick: 10k) embedding-like vectors, 384 dims: random mixtures of 16 latent
 * directions with decaying weight, plus small noise, L2-normalised (isotropic random vectors make
 * any ANN index look either perfect or useless). Each record's first skill names its dominant
 * latent direction (`topic-<j>`, 2–40% of agents) and its second a coarser area (`area-<j mod 4>`,
 * ~25%), so a query's required skill matches the region it points at, as in routing; two more
 * skills are random. The index runs with its defaults (200k-slot shards: 1 at 100k, M 32,
 * efConstruction 200, ef 200, skill sub-indexes within a budget of half a member per agent), so a
 * narrow skill may be answered by its own sub-index or an exact scan of its agents rather than
 * the main HNSW. The 40 random
 * skills (~4.9% each) compete with the topics for that budget, as unrelated skills would.
 *
 * Before the timed queries, as a running peer would have: an untimed warm-up on twice as many
 * other queries per regime from the same distribution, then the index's background work to the
 * end (the sub-indexes chosen by misses the warm-up saw; a peer builds them in slices).
 */
import { CapabilityIndex, hnswlibBuild, type PlanName, type SearchFilter } from '../../capability-index/index.ts'
import { SKILL_INDEX_FIXED_BYTES, skillIndexMemberBytes } from '../../capability-index/skill-index.ts'
import { mulberry32 } from '../../protocols/random.ts'
import { createPolicy } from '../../protocols/routing/index.ts'
import type { Bench, BenchResult } from '../bench.ts'

const DIMS = 384
const LATENT = 16
const K = 10
/** Candidates the bandit chooses among (the router's beacon top-L). */
const L = 3
const COST_WEIGHT = 0.3
/** The index's default with a costWeight: re-rank the 2k most similar. */
const CANDIDATES = 2 * K

interface Data { vectors: Float32Array, topic: Uint8Array, skills: Array<ReadonlySet<string>>, cost: Float64Array }

const prng = mulberry32 // every run builds the same data

function gaussian (rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())
}

/** `n` unit vectors in a low-rank space, each with its dominant latent direction. */
function logSubIndexes (index: CapabilityIndex, n: number, when: string): void {
  const subs = index.stats().groups[0]?.skillIndexes ?? []
  const members = subs.reduce((sum, sub) => sum + sub.live, 0)
  const mib = (members * skillIndexMemberBytes(DIMS) + subs.length * SKILL_INDEX_FIXED_BYTES) / 2 ** 20
  console.error(`route: skill sub-indexes (${when}): ${subs.length}, ${members} members (${(members / n).toFixed(2)} per agent), ~${mib.toFixed(0)} MiB; ${subs.map(sub => `${sub.skill} ${sub.live}${sub.byMisses ? ' (misses)' : ''}`).join(', ')}`)
}

function embeddingLike (n: number, latents: Float32Array, rand: () => number): { vectors: Float32Array, topic: Uint8Array } {
  const vectors = new Float32Array(n * DIMS)
  const topic = new Uint8Array(n)
  const w = new Float64Array(LATENT)
  for (let i = 0; i < n; i++) {
    let best = 0
    for (let j = 0; j < LATENT; j++) {
      w[j] = gaussian(rand) / Math.sqrt(1 + j)
      if (Math.abs(w[j]!) > Math.abs(w[best]!)) best = j
    }
    topic[i] = best
    const row = vectors.subarray(i * DIMS, (i + 1) * DIMS)
    for (let d = 0; d < DIMS; d++) {
      let x = 0.1 * gaussian(rand)
      for (let j = 0; j < LATENT; j++) x += w[j]! * latents[j * DIMS + d]!
      row[d] = x
    }
    normalize(row)
  }
  return { vectors, topic }
}

function normalize (v: Float32Array): void {
  let s = 0
  for (let d = 0; d < v.length; d++) s += v[d]! * v[d]!
  const k = 1 / Math.sqrt(s)
  for (let d = 0; d < v.length; d++) v[d] = v[d]! * k
}

function makeData (n: number, rand: () => number): { data: Data, latents: Float32Array } {
  const latents = new Float32Array(LATENT * DIMS)
  for (let j = 0; j < LATENT; j++) {
    const row = latents.subarray(j * DIMS, (j + 1) * DIMS)
    for (let d = 0; d < DIMS; d++) row[d] = gaussian(rand)
    normalize(row)
  }
  const { vectors, topic } = embeddingLike(n, latents, rand)
  const skills: Array<ReadonlySet<string>> = []
  const cost = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    skills.push(new Set([`area-${topic[i]! % 4}`, `topic-${topic[i]!}`, `skill-${Math.floor(rand() * 40)}`, `skill-${Math.floor(rand() * 40)}`]))
    cost[i] = Math.round(rand() * 50) / 10
  }
  return { data: { vectors, topic, skills, cost }, latents }
}

/** The baseline: one pass over the matrix, same filter, same two-stage re-rank. */
function bruteForce (data: Data, q: Float32Array, skill: string | undefined): string[] {
  const n = data.topic.length
  const top: Array<{ i: number, sim: number }> = []
  for (let i = 0; i < n; i++) {
    if (skill !== undefined && !data.skills[i]!.has(skill)) continue
    let sim = 0
    const base = i * DIMS
    for (let d = 0; d < DIMS; d++) sim += data.vectors[base + d]! * q[d]!
    if (top.length === CANDIDATES && sim <= top[CANDIDATES - 1]!.sim) continue
    let at = top.length === CANDIDATES ? CANDIDATES - 1 : top.length
    if (top.length < CANDIDATES) top.push({ i, sim })
    while (at > 0 && top[at - 1]!.sim < sim) { top[at] = top[at - 1]!; at-- }
    top[at] = { i, sim }
  }
  return top
    .map(({ i, sim }) => ({ i, score: sim - COST_WEIGHT * data.cost[i]! / (1 + data.cost[i]!) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, K)
    .map(({ i }) => `agent-${i}`)
}

function planCounts (before: Readonly<Record<PlanName, number>>, after: Readonly<Record<PlanName, number>>): string {
  return Object.entries(after).map(([plan, n]) => [plan, n - before[plan as PlanName]] as const).filter(([, n]) => n > 0).map(([plan, n]) => `${plan} ${n}`).join(', ')
}

function percentile (xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}

interface Regime { name: string, skill: (i: number) => string | undefined }

export const routeBench: Bench = async ({ quick }) => {
  const n = quick ? 10_000 : 100_000
  const queryCount = quick ? 300 : 1000
  const scanCount = quick ? 100 : 200
  const rand = prng(2026)
  const { data, latents } = makeData(n, rand)
  const queries = embeddingLike(queryCount, latents, rand)

  const built = performance.now()
  // Tuning knobs: AGENTMESH_BENCH_M, _EF_CONSTRUCTION, _EF, _SHARD, _SKILL_BUDGET override the index defaults.
  const knob = (name: string): number | undefined => process.env[`AGENTMESH_BENCH_${name}`] === undefined ? undefined : Number(process.env[`AGENTMESH_BENCH_${name}`])
  const tuning = { M: knob('M'), efConstruction: knob('EF_CONSTRUCTION'), ef: knob('EF'), maxShardSize: knob('SHARD'), skillIndexBudget: knob('SKILL_BUDGET') }
  const index = new CapabilityIndex({ dims: DIMS, model: 'bench-384', ...Object.fromEntries(Object.entries(tuning).filter(([, v]) => v !== undefined)) })
  for (let i = 0; i < n; i++) {
    index.upsert({
      agent: `agent-${i}`,
      vector: data.vectors.subarray(i * DIMS, (i + 1) * DIMS),
      skills: [...data.skills[i]!],
      policy: ['deterministic'],
      schemaHash: '00',
      cost: data.cost[i]!,
      latencyMs: 5,
      capacity: 8
    })
  }
  // Sub-indexes chosen by size during the inserts are built here (a peer builds them in slices).
  index.planSkillIndexes()
  const buildSeconds = (performance.now() - built) / 1000
  const shards = index.stats().groups[0]?.shards.length ?? 0
  console.error(`route: built ${n} × ${DIMS} in ${buildSeconds.toFixed(1)} s (${shards} shard${shards === 1 ? '' : 's'}; M ${tuning.M ?? 32}, efConstruction ${tuning.efConstruction ?? 200}, ef ${tuning.ef ?? 200}; hnswlib ${hnswlibBuild.native ? 'CPU-tuned' : 'portable'}: ${hnswlibBuild.why})`)
  logSubIndexes(index, n, 'by size, in that build time')

  // Subtasks needing a broad skill (their area, ~25% of agents) or a narrow one (their topic,
  // 2–40%), both matching the region the request points at; and, for reference, no filter at all.
  const regimeOf = (topic: Uint8Array): Regime[] => [
    { name: '', skill: i => `area-${topic[i]! % 4}` },
    { name: '-narrow-skill', skill: i => `topic-${topic[i]!}` },
    { name: '-no-filter', skill: () => undefined }
  ]
  // Warm-up, untimed, as a peer's earlier traffic: twice as many other queries from the same
  // distribution (not the measured ones), then the index's background work to the end (a peer
  // does it in slices within its indexing CPU share): the sub-indexes the misses asked for.
  const warmCount = 2 * queryCount
  const warm = embeddingLike(warmCount, latents, prng(2027))
  for (const regime of regimeOf(warm.topic)) {
    for (let i = 0; i < warmCount; i++) {
      const skill = regime.skill(i)
      index.search({ vector: warm.vectors.subarray(i * DIMS, (i + 1) * DIMS), k: K, filter: skill === undefined ? undefined : { skills: [skill], policy: ['deterministic'] }, costWeight: COST_WEIGHT })
    }
  }
  const maintained = performance.now()
  index.maintain()
  console.error(`route: after ${3 * warmCount} warm-up searches, the background work took ${((performance.now() - maintained) / 1000).toFixed(1)} s`)
  logSubIndexes(index, n, 'after the warm-up')

  const vectorOf = (i: number): Float32Array => queries.vectors.subarray(i * DIMS, (i + 1) * DIMS)
  const regimes = regimeOf(queries.topic)
  const results: BenchResult[] = []
  const result = (metric: string, value: number, unit: string, baseline: string, baselineValue: number): BenchResult =>
    ({ bench: 'route', metric, value, unit, baseline, baselineValue, ratio: value / baselineValue })
  const policy = createPolicy('linucb')
  const liveRand = prng(7)
  let dispatches = 0
  for (const regime of regimes) {
    const plansBefore = index.plans()
    const route = (i: number): string[] => {
      const skill = regime.skill(i)
      const filter: SearchFilter | undefined = skill === undefined ? undefined : { skills: [skill], policy: ['deterministic'] }
      const hits = index.search({ vector: vectorOf(i), k: K, filter, costWeight: COST_WEIGHT })
      const states = hits.slice(0, L).map(h => ({ agent: h.agent, similarity: h.similarity, load: (i % 5) / 5, latencyMs: 5 + (i % 7), cost: h.cost, reputation: 0.5, available: true }))
      if (states.length > 0) policy.select(states, { taskType: skill ?? 'any' }, liveRand, { id: `d${dispatches++}`, now: 0 })
      return hits.map(h => h.agent)
    }
    const learn = (): void => { policy.feedback(`d${dispatches - 1}`, { success: liveRand() < 0.8, latencyMs: 10, cost: 1 }, 0) }
    for (let i = 0; i < Math.min(100, queryCount); i++) { route(i); learn() } // warm up
    const hnswMs: number[] = []
    const hnswTop: string[][] = []
    const msByPlan = new Map<string, number[]>()
    for (let i = 0; i < queryCount; i++) {
      const before = index.plans()
      const t = performance.now()
      hnswTop.push(route(i))
      const ms = performance.now() - t
      hnswMs.push(ms)
      learn()
      const plan = planCounts(before, index.plans())
      msByPlan.set(plan, [...msByPlan.get(plan) ?? [], ms])
    }
    const scanMs: number[] = []
    let overlap = 0
    let passing = 0
    for (let i = 0; i < scanCount; i++) {
      const skill = regime.skill(i)
      const t = performance.now()
      const exact = bruteForce(data, vectorOf(i), skill)
      scanMs.push(performance.now() - t)
      const got = new Set(hnswTop[i])
      overlap += exact.filter(a => got.has(a)).length / exact.length
      for (let r = 0; r < n; r++) if (skill === undefined || data.skills[r]!.has(skill)) passing++
    }
    console.error(`route${regime.name}: ${queryCount} routings (search + LinUCB over ${L}), ${scanCount} scans; the skill filter passes ${(100 * passing / scanCount / n).toFixed(1)}% of agents on average; plans: ${planCounts(plansBefore, index.plans())}; p50 by plan: ${[...msByPlan].map(([plan, ms]) => `${plan.replace(/ \d+$/, '')} ${percentile(ms, 0.5).toFixed(2)} ms`).join(', ')}`)
    results.push(
      result(`route-p50${regime.name}`, percentile(hnswMs, 0.5), 'ms', 'brute-force-scan', percentile(scanMs, 0.5)),
      result(`route-p99${regime.name}`, percentile(hnswMs, 0.99), 'ms', 'brute-force-scan', percentile(scanMs, 0.99)),
      result(`recall@10${regime.name}`, overlap / scanCount, 'fraction', 'brute-force-scan', 1)
    )
  }
  return results
}
