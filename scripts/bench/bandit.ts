/**
 * LinUCB decision + update per dispatch through the router's policy interface (`select`, then
 * `feedback`), against a bare typed-array kernel measured in the same run.
 *
 * The kernel does the same arithmetic as the policy's model and nothing else: feature
 * normalisation, per candidate y = A_a⁻¹x, v = z − B_aᵀy, A0⁻¹v and the score; for the chosen arm
 * y, v, A0⁻¹v again (with delayed feedback other rewards may have moved the model since the
 * decision, so the router must recompute them), the Sherman–Morrison updates of A0⁻¹ and A_a⁻¹,
 * B_a, b_a, b0 and β = A0⁻¹b0. It also keeps A0 (lower triangle) and A_a, the rank-1 updates the
 * model makes so that it can re-derive its inverses (see linucb.ts); a second result compares
 * against the kernel without them, the textbook minimum. It has no objects, maps, validation,
 * score list or pending record, indexes arms by number, and keeps every array and dimension in a
 * local. The amortised Cholesky refresh (once per 1000 updates) is left out.
 *
 * A third variant does the kernel's arithmetic with ml-matrix objects, to show what the flat
 * layout buys. Every round scores L candidates drawn from 50 agents and learns one reward (answer
 * and agreement together). Rounds are pre-generated; variants run in short interleaved chunks and
 * the median µs per round is kept.
 */
import { Matrix } from 'ml-matrix'
import { createPolicy, perAgentDims, resolveConfig, sharedDims, taskBucket, type CandidateState, type Dispatch, type Outcome } from '../../protocols/routing/index.ts'
import { seeded } from '../../test/helpers/hosts.ts'
import type { Bench, BenchResult } from '../bench.ts'

const AGENTS = 50
const TYPES = ['arithmetic', 'summarize', 'sort', 'unit-convert', 'json-transform', 'text-stats']
const config = resolveConfig('linucb')
const K = sharedDims(config.context)
const D = perAgentDims(config.context)
const B_ = config.context.taskBuckets
const W = config.rewardWeights
const LAT = config.context.latencyScaleMs
const COST = config.context.costScale

interface Workload {
  L: number
  rounds: number
  tasks: Array<{ taskType: string }>
  buckets: Int32Array
  candidates: CandidateState[][]
  dispatches: Dispatch[]
  outcomes: Outcome[]
  /** Per round, per candidate: arm, similarity, load, latencyMs, cost, reputation, available. */
  raw: Float64Array
  /** Per round: success, latencyMs, cost, agreement. */
  rawOutcome: Float64Array
}

function workload (L: number, rounds: number, seed: number): Workload {
  const r = seeded(seed)
  const w: Workload = {
    L, rounds, tasks: [], buckets: new Int32Array(rounds), candidates: [], dispatches: [], outcomes: [],
    raw: new Float64Array(rounds * L * 7), rawOutcome: new Float64Array(rounds * 4)
  }
  for (let t = 0; t < rounds; t++) {
    const taskType = TYPES[Math.floor(r() * TYPES.length)]!
    w.tasks.push({ taskType })
    w.buckets[t] = taskBucket(taskType, B_)
    const picked = new Set<number>()
    while (picked.size < L) picked.add(Math.floor(r() * AGENTS))
    const cands: CandidateState[] = []
    let i = 0
    for (const arm of picked) {
      const c = { agent: `peer${arm % 7}/agent-${arm}`, similarity: r(), load: r(), latencyMs: 2000 * r(), cost: 2 * r(), reputation: r(), available: r() < 0.9 }
      cands.push(c)
      w.raw.set([arm, c.similarity, c.load, c.latencyMs, c.cost, c.reputation, c.available ? 1 : 0], (t * L + i++) * 7)
    }
    w.candidates.push(cands)
    w.dispatches.push({ id: `d${t}`, now: t })
    const o = { success: r() < 0.6, latencyMs: 2000 * r(), cost: 2 * r(), agreement: r() }
    w.outcomes.push(o)
    w.rawOutcome.set([o.success ? 1 : 0, o.latencyMs, o.cost, o.agreement], t * 4)
  }
  return w
}

/** The policy interface: select (records a pending dispatch), then feedback (learns). */
function policyRunner (w: Workload): Runner {
  const policy = createPolicy('linucb')
  const rng = seeded(1)
  return (from, to) => {
    for (let t = from; t < to; t++) {
      const sel = policy.select(w.candidates[t]!, w.tasks[t]!, rng, w.dispatches[t])
      policy.feedback(sel.dispatchId!, w.outcomes[t]!, t)
    }
  }
}

interface KernelState {
  d: number
  k: number
  buckets: number
  alpha: number
  keepMatrices: boolean
  A: Float64Array
  Ainv: Float64Array
  B: Float64Array
  b: Float64Array
  A0: Float64Array
  A0inv: Float64Array
  b0: Float64Array
  beta: Float64Array
  x: Float64Array
  z: Float64Array
  y: Float64Array
  v: Float64Array
  g: Float64Array
}

function kernelState (L: number, keepMatrices: boolean): KernelState {
  const d = D
  const k = K
  const eye = (n: number, count: number): Float64Array => {
    const m = new Float64Array(count * n * n)
    for (let a = 0; a < count; a++) for (let i = 0; i < n; i++) m[a * n * n + i * n + i] = 1
    return m
  }
  return {
    d, k, buckets: B_, alpha: config.alpha, keepMatrices,
    A: eye(d, AGENTS), Ainv: eye(d, AGENTS), B: new Float64Array(AGENTS * d * k), b: new Float64Array(AGENTS * d),
    A0: eye(k, 1), A0inv: eye(k, 1), b0: new Float64Array(k), beta: new Float64Array(k),
    x: new Float64Array(d), z: new Float64Array(L * k), y: new Float64Array(d), v: new Float64Array(k), g: new Float64Array(k)
  }
}

/** Rounds [from, to) of `w` as bare arithmetic. */
function kernelRounds (st: KernelState, w: Workload, from: number, to: number): void {
  const { d, k, buckets: nb, alpha, keepMatrices, A, Ainv, B, b, A0, A0inv, b0, beta, x, z, y, v, g } = st
  const { L, raw, rawOutcome, buckets } = w
  for (let t = from; t < to; t++) {
    const bucket = buckets[t]!
    x[0] = 1
    for (let j = 0; j < nb; j++) x[1 + j] = j === bucket ? 1 : 0
    let best = -Infinity
    let bi = 0
    for (let c = 0; c < L; c++) {
      const o = (t * L + c) * 7
      const arm = raw[o]! | 0
      const sim = raw[o + 1]!
      const lat = raw[o + 3]!
      const cost = raw[o + 4]!
      const zo = c * k
      z[zo] = 1; z[zo + 1] = sim; z[zo + 2] = raw[o + 2]!; z[zo + 3] = lat / (lat + LAT); z[zo + 4] = cost / (cost + COST)
      z[zo + 5] = raw[o + 5]!; z[zo + 6] = raw[o + 6]!
      for (let j = 0; j < nb; j++) z[zo + 7 + j] = j === bucket ? sim : 0
      const ao = arm * d * d
      const bo = arm * d * k
      let s = 0
      let mean = 0
      for (let i = 0; i < d; i++) {
        let acc = 0
        for (let p = 0; p < d; p++) acc += Ainv[ao + i * d + p]! * x[p]!
        y[i] = acc
        s += acc * x[i]!
        mean += acc * b[arm * d + i]!
      }
      for (let j = 0; j < k; j++) {
        let acc = 0
        for (let i = 0; i < d; i++) acc += B[bo + i * k + j]! * y[i]!
        v[j] = z[zo + j]! - acc
      }
      for (let i = 0; i < k; i++) {
        let acc = 0
        for (let j = 0; j < k; j++) acc += A0inv[i * k + j]! * v[j]!
        s += v[i]! * acc
        mean += v[i]! * beta[i]!
      }
      const score = mean + alpha * Math.sqrt(s > 0 ? s : 0)
      if (score > best) { best = score; bi = c }
    }
    // the reward arrives: recompute y, v, g for the chosen arm, then update
    const oo = t * 4
    const lat = rawOutcome[oo + 1]!
    const cost = rawOutcome[oo + 2]!
    const r = W.success * rawOutcome[oo]! - W.latency * lat / (lat + LAT) - W.cost * cost / (cost + COST) + W.agreement * rawOutcome[oo + 3]!
    const arm = raw[(t * L + bi) * 7]! | 0
    const zo = bi * k
    const ao = arm * d * d
    const bo = arm * d * k
    let xy = 0
    let yb = 0
    for (let i = 0; i < d; i++) {
      let acc = 0
      for (let p = 0; p < d; p++) acc += Ainv[ao + i * d + p]! * x[p]!
      y[i] = acc
      xy += acc * x[i]!
      yb += acc * b[arm * d + i]!
    }
    for (let j = 0; j < k; j++) {
      let acc = 0
      for (let i = 0; i < d; i++) acc += B[bo + i * k + j]! * y[i]!
      v[j] = z[zo + j]! - acc
    }
    let vg = 0
    for (let i = 0; i < k; i++) {
      let acc = 0
      for (let j = 0; j < k; j++) acc += A0inv[i * k + j]! * v[j]!
      g[i] = acc
      vg += v[i]! * acc
    }
    const c1 = 1 + xy
    const ec = (r - yb) / c1
    const den = c1 + vg
    for (let i = 0; i < k; i++) {
      b0[i]! += v[i]! * ec
      const gi = g[i]! / den
      for (let j = 0; j < k; j++) A0inv[i * k + j]! -= gi * g[j]!
      if (keepMatrices) {
        const vi = v[i]! / c1
        for (let j = 0; j <= i; j++) A0[i * k + j]! += vi * v[j]!
      }
    }
    for (let i = 0; i < d; i++) {
      const yi = y[i]! / c1
      const xi = x[i]!
      for (let j = 0; j < d; j++) Ainv[ao + i * d + j]! -= yi * y[j]!
      if (keepMatrices) for (let j = 0; j < d; j++) A[ao + i * d + j]! += xi * x[j]!
      for (let j = 0; j < k; j++) B[bo + i * k + j]! += xi * z[zo + j]!
      b[arm * d + i]! += r * xi
    }
    for (let i = 0; i < k; i++) {
      let acc = 0
      for (let j = 0; j < k; j++) acc += A0inv[i * k + j]! * b0[j]!
      beta[i] = acc
    }
  }
}

function kernelRunner (w: Workload, keepMatrices: boolean): Runner {
  const st = kernelState(w.L, keepMatrices)
  return (from, to) => { kernelRounds(st, w, from, to) }
}

/** The kernel's arithmetic with ml-matrix objects. */
function mlMatrixRunner (w: Workload): Runner {
  const { L } = w
  const A = Array.from({ length: AGENTS }, () => Matrix.eye(D))
  const Ainv = Array.from({ length: AGENTS }, () => Matrix.eye(D))
  const B = Array.from({ length: AGENTS }, () => Matrix.zeros(D, K))
  const b = Array.from({ length: AGENTS }, () => Matrix.zeros(D, 1))
  const A0 = Matrix.eye(K)
  let A0inv = Matrix.eye(K)
  const b0 = Matrix.zeros(K, 1)
  let beta = Matrix.zeros(K, 1)
  const prepare = (arm: number, x: Matrix, z: Matrix): { y: Matrix, v: Matrix, g: Matrix } => {
    const y = Ainv[arm]!.mmul(x)
    const v = Matrix.sub(z, B[arm]!.transposeMultiply(y))
    return { y, v, g: A0inv.mmul(v) }
  }
  return (from, to) => {
    for (let t = from; t < to; t++) {
      const bucket = w.buckets[t]!
      const x = Matrix.columnVector(Array.from({ length: D }, (_, i) => i === 0 || i - 1 === bucket ? 1 : 0))
      let best = -Infinity
      let chosen = { arm: 0, z: x }
      for (let c = 0; c < L; c++) {
        const o = (t * L + c) * 7
        const arm = w.raw[o]!
        const sim = w.raw[o + 1]!
        const lat = w.raw[o + 3]!
        const cost = w.raw[o + 4]!
        const z = Matrix.columnVector([1, sim, w.raw[o + 2]!, lat / (lat + LAT), cost / (cost + COST), w.raw[o + 5]!, w.raw[o + 6]!,
          ...Array.from({ length: B_ }, (_, j) => j === bucket ? sim : 0)])
        const { y, v, g } = prepare(arm, x, z)
        const s = v.dot(g) + x.dot(y)
        const score = v.dot(beta) + y.dot(b[arm]!) + config.alpha * Math.sqrt(s > 0 ? s : 0)
        if (score > best) { best = score; chosen = { arm, z } }
      }
      const { arm, z } = chosen
      const { y, v, g } = prepare(arm, x, z)
      const oo = t * 4
      const lat = w.rawOutcome[oo + 1]!
      const cost = w.rawOutcome[oo + 2]!
      const r = W.success * w.rawOutcome[oo]! - W.latency * lat / (lat + LAT) - W.cost * cost / (cost + COST) + W.agreement * w.rawOutcome[oo + 3]!
      const c1 = 1 + x.dot(y)
      const e = r - y.dot(b[arm]!)
      b0.add(Matrix.mul(v, e / c1))
      A0.add(v.mmul(v.transpose()).div(c1))
      A0inv = A0inv.sub(g.mmul(g.transpose()).div(c1 + v.dot(g)))
      A[arm]!.add(x.mmul(x.transpose()))
      Ainv[arm] = Ainv[arm]!.sub(y.mmul(y.transpose()).div(c1))
      B[arm]!.add(x.mmul(z.transpose()))
      b[arm]!.add(Matrix.mul(x, r))
      beta = A0inv.mmul(b0)
    }
  }
}

type Runner = (from: number, to: number) => void

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** µs per round over rounds [from, to). */
function time (run: Runner, from: number, to: number): number {
  const start = performance.now()
  run(from, to)
  return (performance.now() - start) * 1000 / (to - from)
}

export const banditBench: Bench = async ({ quick }) => {
  // A small pool of rounds, replayed: a router builds its candidates just before it selects, so
  // they are cache-hot. (With 2000 rounds the policy's objects miss cache where the kernel's
  // packed array streams, which adds ~0.1 to the ratio.)
  const rounds = 200
  const chunk = 100
  const workloads = [3, 10].map(L => workload(L, rounds, 42 + L))
  const suffix = (L: number): string => L === 3 ? '' : ` L=${L}`
  const kernels = new Map<number, number>()
  const results: BenchResult[] = []
  for (const w of workloads) {
    const runs = { policy: policyRunner(w), kernel: kernelRunner(w, true), minimal: kernelRunner(w, false) }
    for (let i = 0; i < 50; i++) for (const run of Object.values(runs)) run(0, rounds) // warm-up: JIT, every arm has state
    // Short chunks, interleaved, so load from elsewhere on the machine hits all alike.
    const samples = { policy: [] as number[], kernel: [] as number[], minimal: [] as number[] }
    for (let pass = 0; pass < (quick ? 50 : 300); pass++) {
      for (let from = 0; from < rounds; from += chunk) {
        for (const [name, run] of Object.entries(runs) as Array<[keyof typeof runs, Runner]>) samples[name].push(time(run, from, from + chunk))
      }
    }
    const policy = median(samples.policy)
    const kernel = median(samples.kernel)
    const minimal = median(samples.minimal)
    kernels.set(w.L, kernel)
    results.push({ bench: 'bandit', metric: `decision+update${suffix(w.L)}`, value: policy, unit: 'us', baseline: 'typed-array-kernel', baselineValue: kernel, ratio: policy / kernel })
    results.push({ bench: 'bandit', metric: `decision+update${suffix(w.L)}`, value: policy, unit: 'us', baseline: 'typed-array-kernel-textbook', baselineValue: minimal, ratio: policy / minimal })
  }
  // ml-matrix last: its garbage would otherwise be collected during the others' chunks. It is
  // 15–40× slower, so a tenth of the rounds per chunk.
  const mlRuns = workloads.map(w => mlMatrixRunner(w))
  for (const run of mlRuns) for (let i = 0; i < 5; i++) run(0, rounds)
  const ml: number[][] = workloads.map(() => [])
  for (let pass = 0; pass < (quick ? 5 : 30); pass++) {
    for (let from = 0; from < rounds; from += chunk) mlRuns.forEach((run, i) => ml[i]!.push(time(run, from, from + chunk / 10)))
  }
  workloads.forEach((w, i) => {
    const m = median(ml[i]!)
    const k = kernels.get(w.L)!
    results.push({ bench: 'bandit', metric: `ml-matrix decision+update${suffix(w.L)}`, value: m, unit: 'us', baseline: 'typed-array-kernel', baselineValue: k, ratio: m / k })
  })
  return results
}
