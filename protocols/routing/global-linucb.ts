/**
 * Plain LinUCB with one θ for every agent (Symphony-Coord's selector): reward ≈ xᵀθ, bonus =
 * α √(xᵀA⁻¹x), A = λI + Σxxᵀ kept with its inverse (Sherman–Morrison, refreshed by Cholesky
 * every `refreshEvery` updates, as in linucb.ts).
 */
import { addOuter, dot, invertSpd, matVec, scaledIdentity, shermanMorrison } from './linalg.ts'
import type { LinUCBOptions } from './linucb.ts'
import { count, finite, numbers, record, StateError, toNumbers } from './persist.ts'

export interface GlobalState {
  m: number
  lambda: number
  updates: number
  A: number[]
  Ainv: number[]
  b: number[]
}

export class GlobalLinUCB {
  readonly m: number
  readonly lambda: number
  readonly alpha: number
  readonly #refreshEvery: number
  readonly #A: Float64Array
  readonly #Ainv: Float64Array
  readonly #b: Float64Array
  readonly #theta: Float64Array
  readonly #y: Float64Array
  #updates = 0

  constructor (dims: number, options: LinUCBOptions) {
    this.m = dims
    this.lambda = options.lambda
    this.alpha = options.alpha
    this.#refreshEvery = options.refreshEvery
    this.#A = scaledIdentity(dims, options.lambda)
    this.#Ainv = scaledIdentity(dims, 1 / options.lambda)
    this.#b = new Float64Array(dims)
    this.#theta = new Float64Array(dims)
    this.#y = new Float64Array(dims)
  }

  get updates (): number { return this.#updates }

  /** Writes [mean, bonus] for context x at `x[off…]` into `out`. */
  scoreInto (x: Float64Array, off: number, out: Float64Array): void {
    const m = this.m
    matVec(this.#Ainv, m, m, x, off, this.#y)
    const s = dot(x, off, this.#y, 0, m)
    out[0] = dot(x, off, this.#theta, 0, m)
    out[1] = this.alpha * Math.sqrt(s > 0 ? s : 0)
  }

  update (x: Float64Array, off: number, reward: number): void {
    const m = this.m
    const y = this.#y
    matVec(this.#Ainv, m, m, x, off, y)
    addOuter(this.#A, m, m, x, off, x, off, 1)
    shermanMorrison(this.#Ainv, m, y, 1 + dot(x, off, y, 0, m))
    for (let i = 0; i < m; i++) this.#b[i]! += reward * x[off + i]!
    this.#updates++
    if (this.#refreshEvery > 0 && this.#updates % this.#refreshEvery === 0) invertSpd(this.#A, m, this.#Ainv)
    matVec(this.#Ainv, m, m, this.#b, 0, this.#theta)
  }

  /** A past reward in context x grows by delta: b += δx. */
  adjust (x: Float64Array, off: number, delta: number): void {
    for (let i = 0; i < this.m; i++) this.#b[i]! += delta * x[off + i]!
    matVec(this.#Ainv, this.m, this.m, this.#b, 0, this.#theta)
  }

  state (): { A: Float64Array, Ainv: Float64Array, b: Float64Array, theta: Float64Array } {
    return { A: this.#A.slice(), Ainv: this.#Ainv.slice(), b: this.#b.slice(), theta: this.#theta.slice() }
  }

  toJSON (): GlobalState {
    return { m: this.m, lambda: this.lambda, updates: this.#updates, A: toNumbers(this.#A), Ainv: toNumbers(this.#Ainv), b: toNumbers(this.#b) }
  }

  static fromJSON (dims: number, options: LinUCBOptions, json: unknown): GlobalLinUCB {
    const s = record(json, 'model')
    const m = count(s.m, 'model.m')
    if (m !== dims) throw new StateError(`saved LinUCB model has dimension ${m}; this configuration builds ${dims}`)
    const lambda = finite(s.lambda, 'model.lambda')
    if (lambda !== options.lambda) throw new StateError(`saved LinUCB model was trained with lambda=${lambda}; this configuration has lambda=${options.lambda} (λ is part of the saved matrices)`)
    const g = new GlobalLinUCB(dims, options)
    g.#updates = count(s.updates, 'model.updates')
    g.#A.set(numbers(s.A, m * m, 'model.A'))
    g.#Ainv.set(numbers(s.Ainv, m * m, 'model.Ainv'))
    g.#b.set(numbers(s.b, m, 'model.b'))
    matVec(g.#Ainv, m, m, g.#b, 0, g.#theta)
    return g
  }
}
