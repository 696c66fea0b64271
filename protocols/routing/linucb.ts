/**
 * Hybrid LinUCB on flat Float64Arrays (Li, Chu, Langford, Schapire 2010, "A contextual-bandit
 * approach to personalized news article recommendation", Algorithm 2): the router's model.
 *
 * Hybrid model: reward ≈ zᵀβ + xᵀθ_a, β shared by all agents, θ_a per agent. Ridge prior λ:
 *   A0 = λI_k, b0 = 0 and, for a new agent, A_a = λI_d, B_a = 0 (d×k), b_a = 0.
 * Algorithm 2's update for the chosen agent a, context (x, z), reward r is
 *   A0 += B_aᵀA_a⁻¹B_a;  b0 += B_aᵀA_a⁻¹b_a
 *   A_a += xxᵀ;  B_a += xzᵀ;  b_a += r x
 *   A0 += zzᵀ − B_aᵀA_a⁻¹B_a;  b0 += r z − B_aᵀA_a⁻¹b_a
 * which looks like a rank-d change of A0 (the agent's term leaves with the old A_a, B_a and comes
 * back with the new ones). It is not: A0 is the Schur complement λI + Σzzᵀ − Σ_a B_aᵀA_a⁻¹B_a, and
 * with y = A_a⁻¹x, c = 1 + xᵀy, v = z − B_aᵀy (all before the update) the net change works out to
 *   A0 += v vᵀ / c,   b0 += v (r − yᵀb_a) / c,
 * a rank-1 update (expand (A_a + xxᵀ)⁻¹ by Sherman–Morrison in B'ᵀA'⁻¹B' and the cross terms
 * cancel). So both A0⁻¹ and A_a⁻¹ stay current by Sherman–Morrison alone, O(k² + d² + dk) per
 * update, with no k×k solve. The score needs the same v:
 *   mean  = zᵀβ + xᵀθ_a = vᵀβ + yᵀb_a                (θ_a = A_a⁻¹(b_a − B_aβ))
 *   s     = zᵀA0⁻¹z − 2zᵀA0⁻¹B_aᵀA_a⁻¹x + xᵀA_a⁻¹x + xᵀA_a⁻¹B_aA0⁻¹B_aᵀA_a⁻¹x
 *         = vᵀA0⁻¹v + xᵀy,        bonus = α √s.
 * A reward that grows later (consensus agreement, see policy.ts) changes only b: b_a += δx and
 * b0 += δv (v with the agent's current A_a, B_a), exactly the model the full reward would have
 * given. Every quantity is a function of the accumulated sums, so the model does not depend on the
 * order rewards arrive in (up to rounding).
 *
 * Rank-1 downdates of an inverse accumulate rounding, and not gently: with collinear features
 * (cond(A0) ≈ 2·10⁵) A0⁻¹ was 2·10⁻¹¹ off the inverse of A0 after 10⁵ updates, 9·10⁻⁹ after 10⁶
 * and 4·10⁻⁷ after 2·10⁶. So the matrices themselves are kept too (A0 as its lower triangle),
 * and every `refreshEvery` updates an inverse is re-derived from its matrix by Cholesky.
 */
import { invertSpd, matVec, scaledIdentity } from './linalg.ts'
import { count, finite, list, numbers, record, StateError, text, toNumbers } from './persist.ts'

function nonNegative (v: unknown, what: string): number {
  const x = finite(v, what)
  if (x < 0) throw new StateError(`${what} must be >= 0`)
  return x
}

function outcomes (judged: unknown, answered: unknown, where: string): { judged: number, answered: number } {
  if (judged === undefined && answered === undefined) return { judged: 0, answered: 0 }
  const j = count(judged, `${where}.judged`)
  const a = count(answered, `${where}.answered`)
  if (a > j) throw new StateError(`${where}.answered (${a}) exceeds ${where}.judged (${j})`)
  return { judged: j, answered: a }
}

export interface LinUCBOptions {
  /** Exploration: bonus = alpha · standard deviation of the estimate. */
  alpha: number
  /** Ridge regularisation: the prior precision of every coefficient. */
  lambda: number
  /** Re-derive an inverse from its matrix every this many updates (0: never). */
  refreshEvery: number
}

/**
 * Forgetting: a per-agent test of "this agent now fails every call", a Bernoulli CUSUM against
 * the alternative p = 0 (Page 1954). Each failure adds −ln(1 − p0), p0 being the share of the
 * agent's calls that answered (one success and one failure of prior), within [0.05, 0.95]; a
 * success ends the run (the alternative cannot produce one). So the sum is the log of how
 * unlikely the current run of failures was for this agent: past `threshold` (default 7.5, odds of
 * 1 in 1,800) the agent's own coefficients are dropped and re-learned from that run (at most
 * `CHANGE_REPLAY` observations), and the evidence from before the change stops outvoting the
 * evidence after it. An agent that answered 95% of its calls trips it on its 3rd failure in a
 * row, a 90% one on its 4th, an 80% one on its 5th; an ordinary bad streak almost never does,
 * which matters because a false alarm costs the agent its history. The shared part keeps what it
 * learned from the agent (its old offset profiled out). The restart-on-alarm scheme is
 * CUSUM-UCB's (Liu, Lee, Shroff 2018), applied to the per-agent part of hybrid LinUCB.
 *
 * p0 is measured, not the model's expectation (`expectedSuccess`, used only until the agent has
 * `minUpdates` outcomes on record, as in state saved before outcomes were counted): the model's
 * mean mixes in latency and cost, and the latency it adds back is the advertised one, not what a
 * hard task takes, so its p0 ran low and a reliable agent that broke cost one or two calls more
 * (`shock-fail`, 40 seeds at α = 0.5: 3.1 calls on average to the failing agent, more than 5 in
 * 4 seeds, with the model's p0; 2.95, and more than 5 in 2 seeds, measured).
 */
export interface ChangeDetection {
  /** Alarm level: −ln of the probability of the run under the model (default 7.5). */
  threshold: number
  /** Observations an agent needs before it is watched (default 20: its p0 must mean something). */
  minUpdates: number
}

export const defaultChangeDetection: Readonly<ChangeDetection> = { threshold: 7.5, minUpdates: 20 }

/** Failures of a run kept per agent, to re-learn from after an alarm. */
export const CHANGE_REPLAY = 8

export interface HybridOptions extends LinUCBOptions {
  /** k, the shared features z. */
  sharedDims: number
  /** d, the per-agent features x. */
  perAgentDims: number
  /** Agents with their own state at most; past it the least recently updated is folded into β. */
  maxAgents: number
  /** Per-agent change detection (default on with `defaultChangeDetection`); false: never forget. */
  changeDetection?: ChangeDetection | false
  /**
   * The chance of success the model expects from a mean reward in shared context z (default: the
   * mean itself). The reward's latency and cost terms are known from z, so the policy adds them back.
   */
  expectedSuccess?: (mean: number, z: Float64Array, zOff: number) => number
}

/** mean (exploitation) and bonus (exploration) of one candidate; its UCB score is their sum. */
export interface UcbScore { mean: number, bonus: number }

interface Arm {
  A: Float64Array
  Ainv: Float64Array
  B: Float64Array
  b: Float64Array
  updates: number
  /** The model's update counter at this agent's last update: picks whom to fold when full. */
  lastUpdate: number
  /** −ln P of the current run of failures under the model (≥ 0). */
  down: number
  /** That run: [x; z; reward] per failure, oldest first (at most CHANGE_REPLAY), and buffers to reuse. */
  recent: Float64Array[]
  spare: Float64Array[]
  /** Calls with a known outcome (`update` with `success`), and those that answered. */
  judged: number
  answered: number
}

export interface HybridState {
  k: number
  d: number
  lambda: number
  updates: number
  A0: number[]
  A0inv: number[]
  b0: number[]
  arms: Array<{ agent: string, updates: number, lastUpdate: number, A: number[], Ainv: number[], B: number[], b: number[], down?: number, recent?: number[][], judged?: number, answered?: number }>
  /** Agents re-learned after a change, since the model was created. */
  changes?: number
}

export class HybridLinUCB {
  readonly k: number
  readonly d: number
  readonly lambda: number
  readonly alpha: number
  readonly #refreshEvery: number
  readonly #maxAgents: number
  readonly #A0: Float64Array
  readonly #A0inv: Float64Array
  readonly #b0: Float64Array
  readonly #beta: Float64Array
  readonly #arms = new Map<string, Arm>()
  readonly #change: ChangeDetection | false
  #updates = 0
  #changes = 0
  readonly #expectedSuccess: (mean: number, z: Float64Array, zOff: number) => number
  /** Called when an agent's own coefficients are dropped after a change (logs, metrics). */
  onChange?: (agent: string) => void
  // scratch, reused by every call
  readonly #y: Float64Array
  readonly #v: Float64Array
  readonly #g: Float64Array
  readonly #pair = new Float64Array(2)
  #xy = 0
  #yb = 0

  constructor (options: HybridOptions) {
    const { sharedDims: k, perAgentDims: d, lambda } = options
    this.k = k
    this.d = d
    this.lambda = lambda
    this.alpha = options.alpha
    this.#refreshEvery = options.refreshEvery
    this.#maxAgents = options.maxAgents
    this.#change = options.changeDetection === undefined ? defaultChangeDetection : options.changeDetection
    this.#expectedSuccess = options.expectedSuccess ?? (mean => mean)
    this.#A0 = scaledIdentity(k, lambda)
    this.#A0inv = scaledIdentity(k, 1 / lambda)
    this.#b0 = new Float64Array(k)
    this.#beta = new Float64Array(k)
    this.#y = new Float64Array(d)
    this.#v = new Float64Array(k)
    this.#g = new Float64Array(k)
  }

  /** Agents with their own state (those that have had at least one reward). */
  get agents (): number { return this.#arms.size }
  get updates (): number { return this.#updates }
  /** Agents whose own coefficients were dropped after a detected change. */
  get changes (): number { return this.#changes }
  has (agent: string): boolean { return this.#arms.has(agent) }

  /**
   * Writes [mean, bonus] for `agent` with x at `x[xOff…]` and z at `z[zOff…]` into `out`. An agent
   * without state is scored as a fresh one (A_a = λI, B_a = 0, b_a = 0): by the shared part alone.
   */
  scoreInto (agent: string, x: Float64Array, xOff: number, z: Float64Array, zOff: number, out: Float64Array): void {
    const { k } = this
    const v = this.#v
    const beta = this.#beta
    const A0inv = this.#A0inv
    // y = A_a⁻¹x, v = z − B_aᵀy; mean starts at yᵀb_a, s at xᵀy
    this.#prepare(this.#arms.get(agent), x, xOff, z, zOff)
    let mean = this.#yb
    let s = this.#xy
    // mean += vᵀβ, s += vᵀA0⁻¹v
    for (let i = 0; i < k; i++) {
      let acc = 0
      for (let j = 0; j < k; j++) acc += A0inv[i * k + j]! * v[j]!
      s += v[i]! * acc
      mean += v[i]! * beta[i]!
    }
    out[0] = mean
    out[1] = this.alpha * Math.sqrt(s > 0 ? s : 0)
  }

  score (agent: string, x: Float64Array, z: Float64Array): UcbScore {
    this.scoreInto(agent, x, 0, z, 0, this.#pair)
    return { mean: this.#pair[0]!, bonus: this.#pair[1]! }
  }

  /**
   * One observed reward for `agent` in context (x, z): Algorithm 2's update as two rank-1 steps.
   * With `success` (whether the call answered), the change detector sees it first; an alarm
   * re-learns the agent instead.
   */
  update (agent: string, x: Float64Array, xOff: number, z: Float64Array, zOff: number, reward: number, success?: boolean): void {
    const existing = this.#arms.get(agent)
    if (existing !== undefined && success !== undefined) {
      existing.judged++
      if (success) existing.answered++
    }
    const watched = this.#change !== false && success !== undefined && existing !== undefined && existing.updates >= this.#change.minUpdates
    if (watched && this.#watch(existing, x, xOff, z, zOff, reward, success, this.#change as ChangeDetection)) {
      this.#relearn(agent, existing)
      this.onChange?.(agent)
      return
    }
    // A watched failure already prepared y, v for this arm and context: #learn reuses them.
    this.#learn(agent, x, xOff, z, zOff, reward, watched && success === false)
  }

  /** Adds one call to the agent's run of failures (a success ends it); true on an alarm. */
  #watch (arm: Arm, x: Float64Array, xOff: number, z: Float64Array, zOff: number, reward: number, success: boolean, c: ChangeDetection): boolean {
    if (success) {
      arm.down = 0
      // The run's buffers go back to the pool: failures in a row allocate once, not per failure.
      while (arm.recent.length > 0) arm.spare.push(arm.recent.pop()!)
      return false
    }
    const { k, d } = this
    this.#prepare(arm, x, xOff, z, zOff)
    let mean = this.#yb
    for (let j = 0; j < k; j++) mean += this.#v[j]! * this.#beta[j]!
    const measured = arm.judged >= c.minUpdates ? (arm.answered + 1) / (arm.judged + 2) : this.#expectedSuccess(mean, z, zOff)
    const p0 = Math.min(0.95, Math.max(0.05, measured))
    arm.down -= Math.log(1 - p0)
    const o = arm.recent.length >= CHANGE_REPLAY ? arm.recent.shift()! : arm.spare.pop() ?? new Float64Array(d + k + 1)
    for (let i = 0; i < d; i++) o[i] = x[xOff + i]!
    for (let j = 0; j < k; j++) o[d + j] = z[zOff + j]!
    o[d + k] = reward
    arm.recent.push(o)
    return arm.down > c.threshold
  }

  /**
   * Drops the agent's own coefficients (not folded into the shared part: what the shared part
   * learned from it stays, with its old offset profiled out) and learns its run of failures.
   */
  #relearn (agent: string, arm: Arm): void {
    const { k, d } = this
    this.#arms.delete(agent)
    this.#changes++
    for (const o of arm.recent) this.#learn(agent, o, 0, o, d, o[d + k]!)
  }

  #learn (agent: string, x: Float64Array, xOff: number, z: Float64Array, zOff: number, reward: number, prepared = false): void {
    const { k, d } = this
    const arm = this.#arm(agent)
    if (!prepared) this.#prepare(arm, x, xOff, z, zOff)
    const y = this.#y
    const v = this.#v
    const g = this.#g
    const c = 1 + this.#xy
    const ec = (reward - this.#yb) / c
    // shared part: A0 += vvᵀ/c, b0 += v·e/c, and A0⁻¹ by Sherman–Morrison with u = v/√c:
    // g = A0⁻¹v, A0⁻¹ −= ggᵀ/(c + vᵀg). One pass over both k×k matrices.
    const A0 = this.#A0
    const A0inv = this.#A0inv
    const b0 = this.#b0
    let vg = 0
    for (let i = 0; i < k; i++) {
      let acc = 0
      const r = i * k
      for (let j = 0; j < k; j++) acc += A0inv[r + j]! * v[j]!
      g[i] = acc
      vg += v[i]! * acc
    }
    const den = c + vg
    for (let i = 0; i < k; i++) {
      const vi = v[i]!
      const vic = vi / c
      const gid = g[i]! / den
      const r = i * k
      b0[i]! += vi * ec
      // A0 is only read by Cholesky (lower triangle) and `#symmetricA0`: the lower half suffices
      for (let j = 0; j <= i; j++) {
        A0[r + j]! += vic * v[j]!
        A0inv[r + j]! -= gid * g[j]!
      }
      for (let j = i + 1; j < k; j++) A0inv[r + j]! -= gid * g[j]!
    }
    // per-agent part: A_a += xxᵀ, A_a⁻¹ −= yyᵀ/c, B_a += xzᵀ, b_a += r·x
    const { A, Ainv, B, b } = arm
    for (let i = 0; i < d; i++) {
      const xi = x[xOff + i]!
      const yic = y[i]! / c
      const r = i * d
      for (let j = 0; j < d; j++) {
        A[r + j]! += xi * x[xOff + j]!
        Ainv[r + j]! -= yic * y[j]!
      }
      if (xi !== 0) for (let j = 0; j < k; j++) B[i * k + j]! += xi * z[zOff + j]!
      b[i]! += reward * xi
    }
    this.#updates++
    arm.updates++
    arm.lastUpdate = this.#updates
    if (this.#refreshEvery > 0) {
      if (arm.updates % this.#refreshEvery === 0) invertSpd(arm.A, d, arm.Ainv)
      if (this.#updates % this.#refreshEvery === 0) invertSpd(this.#A0, k, this.#A0inv)
    }
    matVec(this.#A0inv, k, k, b0, 0, this.#beta)
  }

  /**
   * A past reward of `agent` in context (x, z) grows by `delta` (the observation itself was already
   * counted): b_a += δx, b0 += δ(z − B_aᵀA_a⁻¹x). For an agent folded away by `forget`, its
   * observations live in the shared part alone: b0 += δz.
   */
  adjust (agent: string, x: Float64Array, xOff: number, z: Float64Array, zOff: number, delta: number): void {
    if (delta === 0) return
    const arm = this.#arms.get(agent)
    this.#prepare(arm, x, xOff, z, zOff)
    const v = this.#v
    const b0 = this.#b0
    for (let j = 0; j < this.k; j++) b0[j]! += delta * v[j]!
    if (arm !== undefined) {
      const b = arm.b
      for (let i = 0; i < this.d; i++) b[i]! += delta * x[xOff + i]!
      arm.lastUpdate = this.#updates
    }
    matVec(this.#A0inv, this.k, this.k, b0, 0, this.#beta)
  }

  /**
   * Drops an agent's own state and keeps what it taught the shared part: Algorithm 2's first step
   * (A0 += B_aᵀA_a⁻¹B_a, b0 += B_aᵀA_a⁻¹b_a) is exactly the model in which that agent's
   * observations had no per-agent features. A rank-d change, so A0⁻¹ is re-derived by Cholesky.
   */
  forget (agent: string): boolean {
    const arm = this.#arms.get(agent)
    if (arm === undefined) return false
    const { k, d } = this
    const T = new Float64Array(d * k) // A_a⁻¹ B_a
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < k; j++) {
        let s = 0
        for (let p = 0; p < d; p++) s += arm.Ainv[i * d + p]! * arm.B[p * k + j]!
        T[i * k + j] = s
      }
    }
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        let s = 0
        for (let p = 0; p < d; p++) s += arm.B[p * k + i]! * T[p * k + j]!
        this.#A0[i * k + j]! += s
      }
      let s = 0
      for (let p = 0; p < d; p++) s += T[p * k + i]! * arm.b[p]!
      this.#b0[i]! += s
    }
    invertSpd(this.#A0, k, this.#A0inv)
    matVec(this.#A0inv, k, k, this.#b0, 0, this.#beta)
    this.#arms.delete(agent)
    return true
  }

  /** Copies of the shared state, for inspection and tests. */
  shared (): { A0: Float64Array, A0inv: Float64Array, b0: Float64Array, beta: Float64Array } {
    return { A0: this.#symmetricA0(), A0inv: this.#A0inv.slice(), b0: this.#b0.slice(), beta: this.#beta.slice() }
  }

  /** A0 with its upper triangle filled from the lower one, which is the half `update` keeps. */
  #symmetricA0 (): Float64Array {
    const k = this.k
    const out = this.#A0.slice()
    for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) out[i * k + j] = out[j * k + i]!
    return out
  }

  /** Copies of one agent's state, or undefined for an agent without state. */
  arm (agent: string): { A: Float64Array, Ainv: Float64Array, B: Float64Array, b: Float64Array, updates: number } | undefined {
    const a = this.#arms.get(agent)
    if (a === undefined) return undefined
    return { A: a.A.slice(), Ainv: a.Ainv.slice(), B: a.B.slice(), b: a.b.slice(), updates: a.updates }
  }

  toJSON (): HybridState {
    return {
      k: this.k,
      d: this.d,
      lambda: this.lambda,
      updates: this.#updates,
      changes: this.#changes,
      A0: toNumbers(this.#symmetricA0()),
      A0inv: toNumbers(this.#A0inv),
      b0: toNumbers(this.#b0),
      arms: [...this.#arms].map(([agent, a]) => ({
        agent, updates: a.updates, lastUpdate: a.lastUpdate, A: toNumbers(a.A), Ainv: toNumbers(a.Ainv), B: toNumbers(a.B), b: toNumbers(a.b),
        ...(a.down > 0 ? { down: a.down, recent: a.recent.map(toNumbers) } : {}),
        ...(a.judged > 0 ? { judged: a.judged, answered: a.answered } : {})
      }))
    }
  }

  /** Loads saved state; refuses one whose dimensions or λ differ from `options`. */
  static fromJSON (options: HybridOptions, json: unknown): HybridLinUCB {
    const s = record(json, 'model')
    const k = count(s.k, 'model.k')
    const d = count(s.d, 'model.d')
    const lambda = finite(s.lambda, 'model.lambda')
    if (k !== options.sharedDims || d !== options.perAgentDims) {
      throw new StateError(`saved LinUCB model has shared dimension k=${k} and per-agent dimension d=${d}; this configuration builds k=${options.sharedDims}, d=${options.perAgentDims} (context.taskBuckets must match the one the model was trained with)`)
    }
    if (lambda !== options.lambda) throw new StateError(`saved LinUCB model was trained with lambda=${lambda}; this configuration has lambda=${options.lambda} (λ is part of the saved matrices)`)
    const m = new HybridLinUCB(options)
    m.#updates = count(s.updates, 'model.updates')
    m.#changes = s.changes === undefined ? 0 : count(s.changes, 'model.changes')
    m.#A0.set(numbers(s.A0, k * k, 'model.A0'))
    m.#A0inv.set(numbers(s.A0inv, k * k, 'model.A0inv'))
    m.#b0.set(numbers(s.b0, k, 'model.b0'))
    list(s.arms, 'model.arms').forEach((raw, i) => {
      const a = record(raw, `model.arms[${i}]`)
      const agent = text(a.agent, `model.arms[${i}].agent`)
      if (m.#arms.has(agent)) throw new StateError(`model.arms[${i}]: agent ${agent} appears twice`)
      m.#arms.set(agent, {
        A: numbers(a.A, d * d, `model.arms[${i}].A`),
        Ainv: numbers(a.Ainv, d * d, `model.arms[${i}].Ainv`),
        B: numbers(a.B, d * k, `model.arms[${i}].B`),
        b: numbers(a.b, d, `model.arms[${i}].b`),
        updates: count(a.updates, `model.arms[${i}].updates`),
        lastUpdate: count(a.lastUpdate, `model.arms[${i}].lastUpdate`),
        // Saved before change detection, or outside a run of failures: nothing to carry over.
        down: a.down === undefined ? 0 : nonNegative(a.down, `model.arms[${i}].down`),
        recent: a.recent === undefined ? [] : list(a.recent, `model.arms[${i}].recent`).slice(-CHANGE_REPLAY).map((r, j) => numbers(r, d + k + 1, `model.arms[${i}].recent[${j}]`)),
        spare: [],
        // Saved before outcomes were counted: the model's expectation stands in until enough are.
        ...outcomes(a.judged, a.answered, `model.arms[${i}]`)
      })
    })
    matVec(m.#A0inv, k, k, m.#b0, 0, m.#beta)
    return m
  }

  /** y = A_a⁻¹x, w = B_aᵀy, v = z − w (a fresh agent: y = x/λ, v = z). */
  /**
   * y = A_a⁻¹x, v = z − B_aᵀy, and the scalars xᵀy and yᵀb_a (a fresh agent: y = x/λ, v = z, yᵀb = 0).
   * Fused loops: this runs once per candidate per decision.
   */
  #prepare (arm: Arm | undefined, x: Float64Array, xOff: number, z: Float64Array, zOff: number): void {
    const { k, d } = this
    const y = this.#y
    const v = this.#v
    let xy = 0
    let yb = 0
    if (arm === undefined) {
      const inv = 1 / this.lambda
      for (let i = 0; i < d; i++) {
        const xi = x[xOff + i]!
        y[i] = xi * inv
        xy += xi * xi * inv
      }
      for (let j = 0; j < k; j++) v[j] = z[zOff + j]!
    } else {
      const { Ainv, B, b } = arm
      for (let i = 0; i < d; i++) {
        let acc = 0
        const r = i * d
        for (let p = 0; p < d; p++) acc += Ainv[r + p]! * x[xOff + p]!
        y[i] = acc
        xy += acc * x[xOff + i]!
        yb += acc * b[i]!
      }
      for (let j = 0; j < k; j++) {
        let acc = 0
        for (let i = 0; i < d; i++) acc += B[i * k + j]! * y[i]!
        v[j] = z[zOff + j]! - acc
      }
    }
    this.#xy = xy
    this.#yb = yb
  }

  #arm (agent: string): Arm {
    let arm = this.#arms.get(agent)
    if (arm !== undefined) return arm
    if (this.#arms.size >= this.#maxAgents) this.#forgetLeastRecent()
    const { k, d } = this
    arm = {
      A: scaledIdentity(d, this.lambda),
      Ainv: scaledIdentity(d, 1 / this.lambda),
      B: new Float64Array(d * k),
      b: new Float64Array(d),
      updates: 0,
      lastUpdate: this.#updates,
      down: 0,
      recent: [],
      spare: [],
      judged: 0,
      answered: 0
    }
    this.#arms.set(agent, arm)
    return arm
  }

  /** A scan, but only when a new agent arrives at a full model. */
  #forgetLeastRecent (): void {
    let oldest: string | undefined
    let at = Infinity
    for (const [agent, arm] of this.#arms) {
      if (arm.lastUpdate < at) { at = arm.lastUpdate; oldest = agent }
    }
    if (oldest !== undefined) this.forget(oldest)
  }
}
