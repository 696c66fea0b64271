import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { inverse, Matrix, solve } from 'ml-matrix'
import {
  createPolicy, GlobalLinUCB, HybridLinUCB, normaliseCost, normaliseLatency, perAgentDims, POLICY_NAMES, restorePolicy,
  sharedDims, StateError, taskBucket, writePerAgent, writeShared,
  type CandidateState, type PolicyConfig, type PolicyName, type SelectionPolicy
} from '../../protocols/routing/index.ts'
import { seeded } from '../helpers/hosts.ts'

// ---- reference: Li et al. 2010, Algorithm 2, literally, with ml-matrix ----------------------------

const col = (a: ArrayLike<number>): Matrix => Matrix.columnVector(Array.from(a))

class ReferenceHybrid {
  A0: Matrix
  b0: Matrix
  readonly arms = new Map<string, { A: Matrix, B: Matrix, b: Matrix }>()
  readonly k: number
  readonly d: number
  readonly lambda: number
  readonly alpha: number
  constructor (k: number, d: number, lambda: number, alpha: number) {
    this.k = k
    this.d = d
    this.lambda = lambda
    this.alpha = alpha
    this.A0 = Matrix.eye(k).mul(lambda)
    this.b0 = Matrix.zeros(k, 1)
  }

  arm (agent: string): { A: Matrix, B: Matrix, b: Matrix } {
    let a = this.arms.get(agent)
    if (a === undefined) {
      a = { A: Matrix.eye(this.d).mul(this.lambda), B: Matrix.zeros(this.d, this.k), b: Matrix.zeros(this.d, 1) }
      this.arms.set(agent, a)
    }
    return a
  }

  update (agent: string, xs: ArrayLike<number>, zs: ArrayLike<number>, r: number): void {
    const x = col(xs)
    const z = col(zs)
    const a = this.arm(agent)
    let Ainv = inverse(a.A)
    this.A0 = this.A0.add(a.B.transpose().mmul(Ainv).mmul(a.B))
    this.b0 = this.b0.add(a.B.transpose().mmul(Ainv).mmul(a.b))
    a.A = a.A.add(x.mmul(x.transpose()))
    a.B = a.B.add(x.mmul(z.transpose()))
    a.b = a.b.add(x.clone().mul(r))
    Ainv = inverse(a.A)
    this.A0 = this.A0.add(z.mmul(z.transpose())).sub(a.B.transpose().mmul(Ainv).mmul(a.B))
    this.b0 = this.b0.add(z.clone().mul(r)).sub(a.B.transpose().mmul(Ainv).mmul(a.b))
  }

  /** Algorithm 2's p_{t,a}: β̂ = A0⁻¹b0, θ̂ = A⁻¹(b − Bβ̂), s = the four-term variance. */
  score (agent: string, xs: ArrayLike<number>, zs: ArrayLike<number>): { mean: number, bonus: number } {
    const x = col(xs)
    const z = col(zs)
    const a = this.arms.get(agent) ?? { A: Matrix.eye(this.d).mul(this.lambda), B: Matrix.zeros(this.d, this.k), b: Matrix.zeros(this.d, 1) }
    const beta = solve(this.A0, this.b0)
    const A0inv = inverse(this.A0)
    const Ainv = inverse(a.A)
    const theta = Ainv.mmul(Matrix.sub(a.b, a.B.mmul(beta))) // (ml-matrix's instance add/sub/mul work in place)
    const zt = z.transpose()
    const xt = x.transpose()
    const s = zt.mmul(A0inv).mmul(z).get(0, 0) -
      2 * zt.mmul(A0inv).mmul(a.B.transpose()).mmul(Ainv).mmul(x).get(0, 0) +
      xt.mmul(Ainv).mmul(x).get(0, 0) +
      xt.mmul(Ainv).mmul(a.B).mmul(A0inv).mmul(a.B.transpose()).mmul(Ainv).mmul(x).get(0, 0)
    return { mean: zt.mmul(beta).get(0, 0) + xt.mmul(theta).get(0, 0), bonus: this.alpha * Math.sqrt(s) }
  }
}

/** ‖a − b‖ / max(1, ‖b‖) over all entries. */
function relErr (a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length)
  let diff = 0
  let norm = 0
  for (let i = 0; i < a.length; i++) { diff += (a[i]! - b[i]!) ** 2; norm += b[i]! ** 2 }
  return Math.sqrt(diff) / Math.max(1, Math.sqrt(norm))
}
const flat = (m: Matrix): number[] => m.to1DArray()
const TOL = 1e-9

function expectHybridMatches (ours: HybridLinUCB, ref: ReferenceHybrid): void {
  const shared = ours.shared()
  expect(relErr(shared.A0, flat(ref.A0))).toBeLessThan(TOL)
  expect(relErr(shared.A0inv, flat(inverse(ref.A0)))).toBeLessThan(TOL)
  expect(relErr(shared.b0, flat(ref.b0))).toBeLessThan(TOL)
  expect(relErr(shared.beta, flat(solve(ref.A0, ref.b0)))).toBeLessThan(TOL)
  expect(ours.agents).toBe(ref.arms.size)
  for (const [agent, a] of ref.arms) {
    const mine = ours.arm(agent)!
    expect(relErr(mine.A, flat(a.A))).toBeLessThan(TOL)
    expect(relErr(mine.Ainv, flat(inverse(a.A)))).toBeLessThan(TOL)
    expect(relErr(mine.B, flat(a.B))).toBeLessThan(TOL)
    expect(relErr(mine.b, flat(a.b))).toBeLessThan(TOL)
  }
}

function expectScoreMatches (ours: HybridLinUCB, ref: ReferenceHybrid, agent: string, x: Float64Array, z: Float64Array): void {
  const got = ours.score(agent, x, z)
  const want = ref.score(agent, x, z)
  expect(Math.abs(got.mean - want.mean)).toBeLessThan(TOL * Math.max(1, Math.abs(want.mean)))
  expect(Math.abs(got.bonus - want.bonus)).toBeLessThan(TOL * Math.max(1, Math.abs(want.bonus)))
}

const hybrid = (k: number, d: number, lambda = 1, alpha = 1, refreshEvery = 0): HybridLinUCB =>
  new HybridLinUCB({ sharedDims: k, perAgentDims: d, lambda, alpha, refreshEvery, maxAgents: 1000 })

describe('LinUCB numerics against ml-matrix', () => {
  const unit = fc.double({ min: 0, max: 1, noNaN: true })
  const step = (k: number, d: number): fc.Arbitrary<{ agent: number, x: number[], z: number[], r: number }> => fc.record({
    agent: fc.integer({ min: 0, max: 3 }),
    x: fc.array(unit, { minLength: d, maxLength: d }),
    z: fc.array(unit, { minLength: k, maxLength: k }),
    r: fc.double({ min: -1, max: 1, noNaN: true })
  })
  const scenario = fc.record({ k: fc.integer({ min: 1, max: 9 }), d: fc.integer({ min: 1, max: 6 }), lambda: fc.constantFrom(0.5, 1, 2), alpha: fc.constantFrom(0.3, 1) })
    .chain(s => fc.record({ s: fc.constant(s), steps: fc.array(step(s.k, s.d), { minLength: 1, maxLength: 40 }), probe: step(s.k, s.d) }))

  it('Sherman–Morrison inverses, β and the scores equal Algorithm 2 computed with ml-matrix (property)', () => {
    fc.assert(fc.property(scenario, ({ s, steps, probe }) => {
      const ours = hybrid(s.k, s.d, s.lambda, s.alpha)
      const ref = new ReferenceHybrid(s.k, s.d, s.lambda, s.alpha)
      for (const st of steps) {
        const x = Float64Array.from(st.x)
        const z = Float64Array.from(st.z)
        ours.update(`a${st.agent}`, x, 0, z, 0, st.r)
        ref.update(`a${st.agent}`, x, z, st.r)
      }
      expectHybridMatches(ours, ref)
      // every known agent and one never seen, in the probe context
      for (const agent of ['a0', 'a1', 'a2', 'a3', 'new']) expectScoreMatches(ours, ref, agent, Float64Array.from(probe.x), Float64Array.from(probe.z))
    }), { numRuns: 150 })
  })

  it('stays within 1e-9 over 600 updates of real router contexts, with and without periodic refresh', () => {
    const config = { latencyScaleMs: 1000, costScale: 1, taskBuckets: 4 }
    const k = sharedDims(config)
    const d = perAgentDims(config)
    for (const refreshEvery of [0, 50]) {
      const r = seeded(11)
      const ours = hybrid(k, d, 1, 1, refreshEvery)
      const ref = new ReferenceHybrid(k, d, 1, 1)
      const x = new Float64Array(d)
      const z = new Float64Array(k)
      for (let t = 0; t < 600; t++) {
        const bucket = taskBucket(['sort', 'sum', 'convert', undefined][t % 4], 4)
        const c = randomCandidate(r, `agent${Math.floor(r() * 8)}`)
        writePerAgent(bucket, config, x, 0)
        writeShared(c, bucket, config, z, 0)
        const reward = r() - 0.5
        ours.update(c.agent, x, 0, z, 0, reward)
        ref.update(c.agent, x, z, reward)
        if (t % 100 === 99) expectScoreMatches(ours, ref, `agent${t % 9}`, x, z)
      }
      expectHybridMatches(ours, ref)
    }
  })

  it('a later reward increment (adjust) equals having known the full reward at once', () => {
    fc.assert(fc.property(scenario, fc.double({ min: -1, max: 1, noNaN: true }), fc.nat(), ({ s, steps }, delta, which) => {
      const late = hybrid(s.k, s.d, s.lambda)
      const full = new ReferenceHybrid(s.k, s.d, s.lambda, 1)
      const j = which % steps.length
      steps.forEach((st, i) => {
        late.update(`a${st.agent}`, Float64Array.from(st.x), 0, Float64Array.from(st.z), 0, st.r)
        full.update(`a${st.agent}`, st.x, st.z, st.r + (i === j ? delta : 0))
      })
      const st = steps[j]!
      late.adjust(`a${st.agent}`, Float64Array.from(st.x), 0, Float64Array.from(st.z), 0, delta)
      expectHybridMatches(late, full)
    }), { numRuns: 100 })
  })

  it('forget folds an agent into the shared part exactly (Algorithm 2 step 1)', () => {
    const r = seeded(5)
    const ours = hybrid(5, 3)
    const ref = new ReferenceHybrid(5, 3, 1, 1)
    for (let t = 0; t < 60; t++) {
      const x = Float64Array.from({ length: 3 }, r)
      const z = Float64Array.from({ length: 5 }, r)
      const reward = r()
      ours.update(`a${t % 3}`, x, 0, z, 0, reward)
      ref.update(`a${t % 3}`, x, z, reward)
    }
    const a = ref.arms.get('a1')!
    const Ainv = inverse(a.A)
    ref.A0 = ref.A0.add(a.B.transpose().mmul(Ainv).mmul(a.B))
    ref.b0 = ref.b0.add(a.B.transpose().mmul(Ainv).mmul(a.b))
    ref.arms.delete('a1')
    expect(ours.forget('a1')).toBe(true)
    expectHybridMatches(ours, ref)
  })

  it('keeps at most maxAgents agents, folding the least recently updated into the shared part', () => {
    const m = new HybridLinUCB({ sharedDims: 4, perAgentDims: 2, lambda: 1, alpha: 1, refreshEvery: 0, maxAgents: 3 })
    const r = seeded(6)
    for (const agent of ['a', 'b', 'c', 'a', 'd']) m.update(agent, Float64Array.from([1, r()]), 0, Float64Array.from({ length: 4 }, r), 0, r())
    expect(m.agents).toBe(3)
    expect(['a', 'b', 'c', 'd'].filter(a => m.has(a))).toEqual(['a', 'c', 'd'])
  })

  it('the global LinUCB (symphony) matches ridge regression solved by ml-matrix', () => {
    const r = seeded(9)
    const m = 6
    const g = new GlobalLinUCB(m, { alpha: 1, lambda: 1, refreshEvery: 0 })
    let A = Matrix.eye(m)
    let b = Matrix.zeros(m, 1)
    for (let t = 0; t < 300; t++) {
      const x = Float64Array.from({ length: m }, (_, i) => i === 0 ? 1 : r())
      const reward = r() - 0.3
      g.update(x, 0, reward)
      A = A.add(col(x).mmul(col(x).transpose()))
      b = b.add(col(x).mul(reward))
    }
    const st = g.state()
    expect(relErr(st.Ainv, flat(inverse(A)))).toBeLessThan(TOL)
    expect(relErr(st.theta, flat(solve(A, b)))).toBeLessThan(TOL)
    const x = Float64Array.from([1, 0.5, 0.2, 0.3, 0.9, 1])
    const out = new Float64Array(2)
    g.scoreInto(x, 0, out)
    expect(out[0]).toBeCloseTo(col(x).transpose().mmul(solve(A, b)).get(0, 0), 12)
    expect(out[1]).toBeCloseTo(Math.sqrt(col(x).transpose().mmul(inverse(A)).mmul(col(x)).get(0, 0)), 12)
  })
})

// ---- a seeded synthetic mesh --------------------------------------------------------------------

function randomCandidate (r: () => number, agent: string): CandidateState {
  return { agent, similarity: r(), load: r(), latencyMs: 2000 * r(), cost: 3 * r(), reputation: r(), available: r() < 0.9 }
}

/** Three task types that land in different buckets, so per-agent competence is representable. */
const TASK_TYPES = ['arithmetic', 'summarize', 'sort', 'unit-convert', 'json-transform', 'text-stats']
  .filter((t, i, all) => all.findIndex(u => taskBucket(u, 4) === taskBucket(t, 4)) === i).slice(0, 3)

interface SimAgent { agent: string, offset: number, sim: number, latencyMs: number, cost: number, reputation: number, competence: number[] }

/**
 * 20 agents. Success probability is linear in the context plus a per-agent offset and per-task-type
 * competence; the reward adds the latency and cost terms. Agents 0–3 look most similar to every
 * task but are poor: greedy-similarity (and a top-L similarity screen) is fooled by them.
 */
function syntheticMesh (seed: number, n = 20): SimAgent[] {
  const r = seeded(seed)
  return Array.from({ length: n }, (_, i) => {
    const fool = i < 4
    return {
      agent: `peer${i}/agent`,
      offset: fool ? -0.3 : -0.15 + 0.35 * r(),
      sim: fool ? 0.85 + 0.1 * r() : 0.3 + 0.5 * r(),
      latencyMs: 100 + 1900 * r(),
      cost: 0.1 + 2.9 * r(),
      reputation: 0.5 + 0.5 * r(),
      competence: TASK_TYPES.map(() => -0.1 + 0.2 * r())
    }
  })
}

interface Round { type: number, candidates: CandidateState[], pSuccess: number[], expected: number[] }

function round (mesh: SimAgent[], r: () => number, policy: SelectionPolicy): Round {
  const type = Math.floor(r() * TASK_TYPES.length)
  const candidates: CandidateState[] = []
  const pSuccess: number[] = []
  const expected: number[] = []
  const w = policy.config.rewardWeights
  for (const a of mesh) {
    const load = r()
    const similarity = Math.min(1, Math.max(0, a.sim + 0.1 * (r() - 0.5)))
    const available = r() < 0.9
    const latencyMs = a.latencyMs * (0.5 + load)
    candidates.push({ agent: a.agent, similarity, load, latencyMs, cost: a.cost, reputation: a.reputation, available })
    const p = Math.min(0.98, Math.max(0.02, 0.5 + a.offset + a.competence[type]! + 0.3 * (similarity - 0.6) - 0.25 * load - 0.5 * (available ? 0 : 1)))
    pSuccess.push(p)
    expected.push(w.success * p - w.latency * normaliseLatency(latencyMs, policy.config.context) - w.cost * normaliseCost(a.cost, policy.config.context))
  }
  return { type, candidates, pSuccess, expected }
}

/** Cumulative pseudo-regret (best expected reward − chosen expected reward) per half of the run. */
function regret (name: PolicyName, T: number, seed = 7, config: PolicyConfig = {}): { total: number, first: number, second: number } {
  const mesh = syntheticMesh(seed)
  const r = seeded(seed + 1)
  const rng = seeded(seed + 2)
  const policy = createPolicy(name, config)
  const halves = [0, 0]
  for (let t = 0; t < T; t++) {
    const { type, candidates, pSuccess, expected } = round(mesh, r, policy)
    const { chosen } = policy.select(candidates, { taskType: TASK_TYPES[type] }, rng, { id: `d${t}`, now: t })
    const i = candidates.findIndex(c => c.agent === chosen)
    halves[t < T / 2 ? 0 : 1]! += Math.max(...expected) - expected[i]!
    const c = candidates[i]!
    policy.feedback(`d${t}`, { success: r() < pSuccess[i]!, latencyMs: c.latencyMs, cost: c.cost }, t)
  }
  return { total: halves[0]! + halves[1]!, first: halves[0]!, second: halves[1]! }
}

describe('regret in a seeded synthetic mesh', () => {
  it.each([7, 8])('LinUCB: below random, greedy-similarity, epsilon-greedy and symphony over 5000 rounds, and sublinear (mesh %i)', seed => {
    const T = 5000
    const results = Object.fromEntries(POLICY_NAMES.map(name => [name, regret(name, T, seed)])) as Record<PolicyName, ReturnType<typeof regret>>
    const lin = results.linucb
    if (process.env.SHOW_REGRET !== undefined) console.log(seed, JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(v.total)]))), 'linucb without change detection', Math.round(regret('linucb', T, seed, { changeDetection: false }).total))
    expect(lin.total).toBeLessThan(results.random.total)
    expect(lin.total).toBeLessThan(results['greedy-similarity'].total)
    expect(lin.total).toBeLessThan(results['epsilon-greedy'].total)
    expect(lin.total).toBeLessThan(results.symphony.total)
    // Sublinear: regret growing as √T would put the second half at 0.41× the first, linear at 1×.
    // At α = 0.5 (the default since issue 13's third round) the first half explores less, so the
    // ratio is higher than at α = 1 (seed 8: 0.62; totals 170 and 203, against 242 and 218 at α = 1).
    expect(lin.second).toBeLessThan(0.7 * lin.first)
    // the environment does fool greedy-similarity: worse than choosing at random
    expect(results['greedy-similarity'].total).toBeGreaterThan(results.random.total)
  })
})

// ---- the hybrid model's point: a new agent is scored from its first beacon -------------------------

describe('hybrid model', () => {
  it('prefers a brand-new agent with a good shared profile over a brand-new one with a bad profile', () => {
    const mesh = syntheticMesh(3)
    const r = seeded(4)
    const rng = seeded(5)
    const policy = createPolicy('linucb')
    for (let t = 0; t < 400; t++) {
      const { type, candidates, pSuccess } = round(mesh, r, policy)
      const { chosen } = policy.select(candidates, { taskType: TASK_TYPES[type] }, rng, { id: `d${t}`, now: t })
      const i = candidates.findIndex(c => c.agent === chosen)
      policy.feedback(`d${t}`, { success: r() < pSuccess[i]!, latencyMs: candidates[i]!.latencyMs, cost: candidates[i]!.cost }, t)
    }
    const base = { latencyMs: 300, cost: 0.5, reputation: 0.8, available: true }
    const good: CandidateState = { ...base, agent: 'newcomer/good', similarity: 0.95, load: 0.05 }
    const bad: CandidateState = { ...base, agent: 'newcomer/bad', similarity: 0.2, load: 0.95 }
    for (const order of [[good, bad], [bad, good]]) {
      const sel = policy.select(order, { taskType: TASK_TYPES[0] }, rng)
      expect(sel.chosen).toBe('newcomer/good')
      const [g, b] = [good, bad].map(c => sel.scores.find(s => s.agent === c.agent)!)
      expect(g!.mean).toBeGreaterThan(b!.mean + 0.1)
    }
  })
})

// ---- delayed feedback --------------------------------------------------------------------------

function modelArrays (p: SelectionPolicy): number[] {
  const m = p.toJSON().model as { A0: number[], A0inv: number[], b0: number[], arms: Array<{ agent: string, A: number[], Ainv: number[], B: number[], b: number[] }> }
  const arms = [...m.arms].sort((a, b) => a.agent < b.agent ? -1 : 1)
  return [...m.A0, ...m.A0inv, ...m.b0, ...arms.flatMap(a => [...a.A, ...a.Ainv, ...a.B, ...a.b])]
}

describe('delayed feedback', () => {
  function dispatched (n: number, seed: number): { policy: SelectionPolicy, outcomes: Array<{ id: string, success: boolean, latencyMs: number, cost: number, agreement: number }> } {
    // Order-independence is a property of the stationary model: forgetting depends on order by design.
    const policy = createPolicy('linucb', { changeDetection: false })
    const r = seeded(seed)
    const rng = seeded(seed + 1)
    const agents = Array.from({ length: 6 }, (_, i) => `p/a${i}`)
    const outcomes = []
    for (let t = 0; t < n; t++) {
      const candidates = agents.map(a => randomCandidate(r, a))
      policy.select(candidates, { taskType: TASK_TYPES[t % 3] }, rng, { id: `d${t}`, now: t })
      outcomes.push({ id: `d${t}`, success: r() < 0.6, latencyMs: 1000 * r(), cost: r(), agreement: r() })
    }
    return { policy, outcomes }
  }

  it('answers and agreements in any order, late or early, give the model of in-order full rewards', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 2 ** 31 }), (seed, shuffleSeed) => {
      const inOrder = dispatched(25, seed)
      for (const o of inOrder.outcomes) expect(inOrder.policy.feedback(o.id, o).status).toBe('learned')
      const shuffled = dispatched(25, seed)
      // every dispatch reports its answer and, separately, its agreement; shuffle all 50 reports
      const reports = shuffled.outcomes.flatMap(o => [
        { id: o.id, report: { success: o.success, latencyMs: o.latencyMs, cost: o.cost } },
        { id: o.id, report: { agreement: o.agreement } }
      ])
      const r = seeded(shuffleSeed)
      for (let i = reports.length - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1));
        [reports[i], reports[j]] = [reports[j]!, reports[i]!]
      }
      for (const { id, report } of reports) expect(['learned', 'held']).toContain(shuffled.policy.feedback(id, report).status)
      expect(shuffled.policy.pending).toBe(0)
      expect(inOrder.policy.pending).toBe(0)
      expect(relErr(modelArrays(shuffled.policy), modelArrays(inOrder.policy))).toBeLessThan(TOL)
    }), { numRuns: 30 })
  })

  it('a late agreement changes the model (b only) by w.agreement · agreement', () => {
    const { policy, outcomes } = dispatched(5, 1)
    const o = outcomes[0]!
    const answered = policy.feedback(o.id, { success: true, latencyMs: 100, cost: 0.2 })
    expect(answered.status).toBe('learned')
    const before = policy.toJSON().model as { A0: number[], b0: number[] }
    const late = policy.feedback(o.id, { agreement: 0.8 })
    expect(late).toEqual({ status: 'learned', reward: 0.5 * 0.8 })
    const after = policy.toJSON().model as { A0: number[], b0: number[] }
    expect(after.A0).toEqual(before.A0)
    expect(after.b0).not.toEqual(before.b0)
    expect(policy.feedback(o.id, { agreement: 0.8 })).toEqual({ status: 'ignored', reason: expect.stringContaining('unknown dispatch id') })
  })

  it('ignores unknown, expired, repeated and invalid reports with a reason', () => {
    const policy = createPolicy('linucb', { pendingTtlMs: 1000 })
    const rng = seeded(2)
    const candidates = ['x/a', 'x/b'].map(a => randomCandidate(rng, a))
    policy.select(candidates, {}, rng, { id: 'one', now: 0 })
    policy.select(candidates, {}, rng, { id: 'two', now: 500 })
    const answer = { success: true, latencyMs: 10, cost: 0 }
    expect(policy.feedback('nope', answer)).toEqual({ status: 'ignored', reason: expect.stringContaining('unknown dispatch id') })
    expect(policy.feedback('two', { success: true, latencyMs: -1, cost: 0 })).toMatchObject({ status: 'ignored', reason: expect.stringContaining('invalid outcome: latencyMs') })
    expect(policy.feedback('two', { agreement: 2 })).toMatchObject({ status: 'ignored', reason: expect.stringContaining('agreement') })
    expect(policy.feedback('two', { agreement: 1 })).toEqual({ status: 'held' })
    expect(policy.feedback('two', { agreement: 1 })).toEqual({ status: 'ignored', reason: 'agreement already received' })
    expect(policy.feedback('one', answer, 1200)).toEqual({ status: 'ignored', reason: expect.stringContaining('expired: no report within 1000 ms') })
    expect(policy.feedback('two', answer, 1200)).toMatchObject({ status: 'learned' })
    expect(policy.feedback('two', answer, 1200)).toEqual({ status: 'ignored', reason: expect.stringContaining('unknown dispatch id') })
    expect(() => policy.select(candidates, {}, rng, { id: 'three', now: 1300 })).not.toThrow()
    expect(() => policy.select(candidates, {}, rng, { id: 'three', now: 1300 })).toThrow(/already pending/)
  })

  it('pending memory stays bounded by maxPending and by age', () => {
    const policy = createPolicy('linucb', { maxPending: 50, pendingTtlMs: 10_000 })
    const rng = seeded(3)
    const candidates = ['x/a', 'x/b', 'x/c'].map(a => randomCandidate(rng, a))
    for (let t = 0; t < 2000; t++) {
      policy.select(candidates, {}, rng, { id: `d${t}`, now: t })
      expect(policy.pending).toBeLessThanOrEqual(50)
    }
    expect(policy.feedback('d1949', { success: true, latencyMs: 1, cost: 0 })).toEqual({ status: 'ignored', reason: 'expired: more than 50 dispatches were pending' })
    // the memory of why is bounded too: long-gone ids are simply unknown
    expect(policy.feedback('d0', { success: true, latencyMs: 1, cost: 0 })).toEqual({ status: 'ignored', reason: expect.stringContaining('unknown dispatch id') })
    expect(policy.feedback('d1999', { success: true, latencyMs: 1, cost: 0 })).toMatchObject({ status: 'learned' })
    expect(policy.expire(2000 + 10_000)).toBe(50) // d1999 too: answered, it waits for its agreement
    expect(policy.pending).toBe(0)
    // an answer alone keeps the entry for its agreement; it too leaves with age
    policy.select(candidates, {}, rng, { id: 'late', now: 20_000 })
    policy.feedback('late', { success: true, latencyMs: 1, cost: 0 })
    expect(policy.pending).toBe(1)
    expect(policy.expire(30_000)).toBe(1)
  })
})

// ---- policies by name, persistence ------------------------------------------------------------------

function train (policy: SelectionPolicy, rounds: number, seed: number, leavePending = 3): void {
  const r = seeded(seed)
  const rng = seeded(seed + 1)
  const agents = Array.from({ length: 8 }, (_, i) => `h${i % 3}/agent-${i}`)
  for (let t = 0; t < rounds; t++) {
    const candidates = agents.filter(() => r() < 0.7).map(a => randomCandidate(r, a))
    if (candidates.length === 0) continue
    policy.select(candidates, { taskType: TASK_TYPES[t % 3] }, rng, { id: `d${t}`, now: t })
    if (t < rounds - leavePending) policy.feedback(`d${t}`, { success: r() < 0.5, latencyMs: 500 * r(), cost: r(), ...(t % 2 === 0 ? { agreement: r() } : {}) })
  }
}

describe('policies and persistence', () => {
  it('every policy is selectable by name; an unknown name lists the known ones', () => {
    for (const name of POLICY_NAMES) {
      const p = createPolicy(name)
      expect(p.name).toBe(name)
      const rng = seeded(1)
      const candidates = ['x/a', 'x/b', 'x/c', 'x/d'].map(a => randomCandidate(rng, a))
      const sel = p.select(candidates, { taskType: 'sort' }, rng)
      expect(candidates.map(c => c.agent)).toContain(sel.chosen)
      expect(sel.scores.length).toBe(name === 'symphony' ? 3 : 4)
    }
    expect(() => createPolicy('thompson')).toThrow('unknown selection policy "thompson"; known policies: linucb, symphony, epsilon-greedy, greedy-similarity, round-robin, random')
    expect(() => createPolicy('linucb', { alpha: -1 })).toThrow(/alpha/)
  })

  it('every policy round-trips through JSON exactly and decides identically afterwards', () => {
    for (const name of POLICY_NAMES) {
      const p = createPolicy(name, { epsilon: 0.2 })
      train(p, 300, 21)
      const saved = JSON.stringify(p.toJSON())
      const q = restorePolicy(JSON.parse(saved))
      expect(JSON.stringify(q.toJSON())).toBe(saved)
      expect(q.pending).toBe(p.pending)
      // the same next decisions, to the bit, and the same learning afterwards
      const r1 = seeded(99)
      const r2 = seeded(99)
      const candidates = Array.from({ length: 8 }, (_, i) => randomCandidate(seeded(i), `h${i % 3}/agent-${i}`))
      for (let t = 0; t < 5; t++) {
        const a = p.select(candidates, { taskType: 'sort' }, r1, { id: `n${t}`, now: 400 + t })
        const b = q.select(candidates, { taskType: 'sort' }, r2, { id: `n${t}`, now: 400 + t })
        expect(b).toEqual(a)
        p.feedback(`n${t}`, { success: true, latencyMs: 100, cost: 1 })
        q.feedback(`n${t}`, { success: true, latencyMs: 100, cost: 1 })
      }
      // the pending dispatch left over from training is still answerable after the restart
      expect(q.feedback('d299', { success: true, latencyMs: 1, cost: 0 }).status).toBe('learned')
      expect(p.feedback('d299', { success: true, latencyMs: 1, cost: 0 }).status).toBe('learned')
      expect(JSON.stringify(q.toJSON())).toBe(JSON.stringify(p.toJSON()))
    }
  })

  it('refuses state of another dimension, λ, format or version with a clear error', () => {
    const p = createPolicy('linucb')
    train(p, 50, 1)
    const state = p.toJSON()
    expect(() => restorePolicy(state, { context: { taskBuckets: 6 } })).toThrow(StateError)
    expect(() => restorePolicy(state, { context: { taskBuckets: 6 } })).toThrow('saved LinUCB model has shared dimension k=11 and per-agent dimension d=5; this configuration builds k=13, d=7')
    expect(() => restorePolicy(state, { lambda: 2 })).toThrow(/lambda=1.*lambda=2/)
    expect(() => restorePolicy({ ...state, version: 2 })).toThrow(/version 2/)
    expect(() => restorePolicy({ ...state, format: 'x' })).toThrow(/not a saved routing policy/)
    expect(() => restorePolicy({ ...state, policy: 'ucb1' })).toThrow(/unknown policy "ucb1"/)
    const model = state.model as { A0: number[] }
    expect(() => restorePolicy({ ...state, model: { ...model, A0: model.A0.slice(1) } })).toThrow('model.A0 has 120 numbers, expected 121')
    expect(() => restorePolicy({ ...state, pending: [{ id: 'x', agent: 'a', context: [1], at: 0, answered: false }] })).toThrow('pending[0].context has 1 numbers, expected 16')
    // a different exploration rate is fine: not part of the learned state
    expect(restorePolicy(state, { alpha: 0.3 }).config.alpha).toBe(0.3)
    const s = createPolicy('symphony').toJSON()
    expect(() => restorePolicy({ ...s, model: { ...(s.model as object), m: 7 } })).toThrow(/dimension 7; this configuration builds 6/)
  })
})

describe('baselines', () => {
  const rng = seeded(8)
  const candidates = Array.from({ length: 5 }, (_, i) => ({ ...randomCandidate(rng, `h/agent-${i}`), similarity: [0.3, 0.9, 0.5, 0.8, 0.1][i]! }))

  it('symphony: α = 1, δ = 0.05, L = 3 (its defaults); screening is its composite score, not similarity alone', () => {
    expect(createPolicy('symphony').config).toMatchObject({ alpha: 1, lambda: 1, delta: 0.05, topL: 3 })
    const sel = createPolicy('symphony').select(candidates, {}, seeded(1))
    expect(sel.scores).toHaveLength(3)
  })

  it('round-robin visits every candidate in turn; greedy-similarity takes the most similar', () => {
    const rr = createPolicy('round-robin')
    const seen = Array.from({ length: 10 }, () => rr.select(candidates, {}, rng).chosen)
    expect(seen.slice(0, 5).sort()).toEqual(candidates.map(c => c.agent).sort())
    expect(seen.slice(5)).toEqual(seen.slice(0, 5))
    expect(createPolicy('greedy-similarity').select(candidates, {}, rng).chosen).toBe('h/agent-1')
  })

  it('epsilon-greedy exploits the best running mean; random covers every candidate', () => {
    const eg = createPolicy('epsilon-greedy', { epsilon: 0 })
    for (const [i, c] of candidates.entries()) {
      eg.select([c], {}, rng, { id: `e${i}`, now: 0 })
      eg.feedback(`e${i}`, { success: i === 2, latencyMs: 0, cost: 0 })
    }
    expect(eg.select(candidates, {}, rng).chosen).toBe('h/agent-2')
    const random = createPolicy('random')
    const counts = new Map<string, number>()
    for (let t = 0; t < 500; t++) { const c = random.select(candidates, {}, rng).chosen; counts.set(c, (counts.get(c) ?? 0) + 1) }
    expect(counts.size).toBe(5)
    for (const n of counts.values()) expect(n).toBeGreaterThan(60)
  })

  it('rejects candidates it cannot score', () => {
    const p = createPolicy('linucb')
    expect(() => p.select([], {}, rng)).toThrow(/at least one candidate/)
    expect(() => p.select([{ ...candidates[0]!, similarity: Number.NaN }], {}, rng)).toThrow(/similarity must be a finite number/)
  })
})
