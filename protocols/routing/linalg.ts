/**
 * The few dense kernels the bandits need, on flat row-major Float64Arrays. No objects on the hot
 * path: a Sherman–Morrison step on plain typed arrays is 10–36× faster than the same step through
 * ml-matrix objects (which the tests use as the reference).
 */

/** out = M v, M is rows × cols. */
export function matVec (M: Float64Array, rows: number, cols: number, v: Float64Array, vOffset: number, out: Float64Array): void {
  for (let i = 0; i < rows; i++) {
    let s = 0
    const r = i * cols
    for (let j = 0; j < cols; j++) s += M[r + j]! * v[vOffset + j]!
    out[i] = s
  }
}

export function dot (a: Float64Array, aOffset: number, b: Float64Array, bOffset: number, n: number): number {
  let s = 0
  for (let i = 0; i < n; i++) s += a[aOffset + i]! * b[bOffset + i]!
  return s
}

/** M += scale · u vᵀ, M is rows × cols. */
export function addOuter (M: Float64Array, rows: number, cols: number, u: Float64Array, uOffset: number, v: Float64Array, vOffset: number, scale: number): void {
  for (let i = 0; i < rows; i++) {
    const ui = u[uOffset + i]! * scale
    if (ui === 0) continue
    const r = i * cols
    for (let j = 0; j < cols; j++) M[r + j]! += ui * v[vOffset + j]!
  }
}

/**
 * Sherman–Morrison for a symmetric matrix: if Minv = M⁻¹, y = Minv u and den = 1 + uᵀy, then
 * (M + u uᵀ)⁻¹ = Minv − y yᵀ / den. y_i·y_j and y_j·y_i round identically, so Minv stays exactly
 * symmetric.
 */
export function shermanMorrison (Minv: Float64Array, n: number, y: Float64Array, den: number): void {
  const s = 1 / den
  for (let i = 0; i < n; i++) {
    const yi = y[i]! * s
    if (yi === 0) continue
    const r = i * n
    for (let j = 0; j < n; j++) Minv[r + j]! -= yi * y[j]!
  }
}

/** out = λI (n × n). */
export function scaledIdentity (n: number, lambda: number, out = new Float64Array(n * n)): Float64Array {
  out.fill(0)
  for (let i = 0; i < n; i++) out[i * n + i] = lambda
  return out
}

/**
 * out = M⁻¹ for a symmetric positive definite M (n × n), through its Cholesky factor M = L Lᵀ:
 * solve L Lᵀ X = I column by column. Used to re-derive an inverse from its accumulated matrix
 * (refresh, loading), never on the per-decision path. Throws if M is not positive definite.
 */
export function invertSpd (M: Float64Array, n: number, out: Float64Array): void {
  const L = new Float64Array(n * n)
  for (let j = 0; j < n; j++) {
    let d = M[j * n + j]!
    for (let p = 0; p < j; p++) d -= L[j * n + p]! * L[j * n + p]!
    if (!(d > 0)) throw new RangeError('matrix is not positive definite')
    const ljj = Math.sqrt(d)
    L[j * n + j] = ljj
    for (let i = j + 1; i < n; i++) {
      let s = M[i * n + j]!
      for (let p = 0; p < j; p++) s -= L[i * n + p]! * L[j * n + p]!
      L[i * n + j] = s / ljj
    }
  }
  const col = new Float64Array(n)
  for (let c = 0; c < n; c++) {
    // forward: L y = e_c
    for (let i = 0; i < n; i++) {
      let s = i === c ? 1 : 0
      for (let p = 0; p < i; p++) s -= L[i * n + p]! * col[p]!
      col[i] = s / L[i * n + i]!
    }
    // backward: Lᵀ x = y
    for (let i = n - 1; i >= 0; i--) {
      let s = col[i]!
      for (let p = i + 1; p < n; p++) s -= L[p * n + i]! * col[p]!
      col[i] = s / L[i * n + i]!
    }
    for (let i = 0; i < n; i++) out[i * n + c] = col[i]!
  }
  // Symmetrise: the two triangles come from different solves and may differ in the last bit.
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const m = (out[i * n + j]! + out[j * n + i]!) / 2
      out[i * n + j] = m
      out[j * n + i] = m
    }
  }
}
