/**
 * Axis domains and ticks: 1-2-5 steps on linear axes, decades (with 2 and 5 between when the
 * axis spans few) on log axes. Labels use toFixed/toExponential only, so they are the same on
 * every machine and locale.
 */

export interface Axis {
  /** Domain ends in data units. */
  min: number
  max: number
  log: boolean
  ticks: number[]
  labels: string[]
}

/** Rounds away float noise such as 0.30000000000000004 so domain ends and ticks are clean. */
function clean (v: number): number {
  return v === 0 ? 0 : Number(v.toPrecision(12))
}

/** 10^k, exact for the powers doubles can hold (division keeps 10^-k correctly rounded). */
function pow10 (k: number): number {
  return k >= 0 ? 10 ** k : 1 / 10 ** -k
}

/** The 1-2-5 step that cuts `span` into about `target` parts, and its power of ten. */
export function niceStep (span: number, target: number): { step: number, exp: number } {
  const raw = span / target
  let exp = Math.floor(Math.log10(raw))
  const norm = raw / pow10(exp)
  let m = norm <= 1.0001 ? 1 : norm <= 2.0001 ? 2 : norm <= 5.0001 ? 5 : 10
  if (m === 10) { m = 1; exp += 1 }
  return { step: exp >= 0 ? m * pow10(exp) : m / pow10(-exp), exp }
}

function noMinusZero (label: string): string {
  return /^-[0.]*(e.*)?$/.test(label) ? label.slice(1) : label
}

/** Labels for ticks that are multiples of 10^exp: fixed decimals, or exponent form when very large or small. */
export function tickLabels (ticks: number[], exp: number): string[] {
  const maxAbs = Math.max(0, ...ticks.map(Math.abs))
  if (maxAbs >= 1e7 || (maxAbs > 0 && maxAbs < 1e-3)) {
    const digits = Math.min(20, Math.max(0, Math.floor(Math.log10(maxAbs)) - exp))
    return ticks.map(t => t === 0 ? '0' : noMinusZero(t.toExponential(digits).replace('e+', 'e')))
  }
  return ticks.map(t => noMinusZero(t.toFixed(Math.min(20, Math.max(0, -exp)))))
}

/**
 * A linear axis over [dataMin, dataMax] (Infinity/-Infinity when there is no data). With `fixed`
 * the domain is exactly that range; otherwise it is widened to whole steps. A constant series
 * gets a band of ±10 % (±1 around 0) so it is drawn mid-plot instead of dividing by zero.
 */
export function linearAxis (dataMin: number, dataMax: number, target: number, fixed?: [number, number]): Axis {
  let lo: number, hi: number
  if (fixed !== undefined) {
    [lo, hi] = fixed
  } else if (!(dataMin <= dataMax)) {
    [lo, hi] = [0, 1]
  } else if (dataMin === dataMax) {
    const pad = Math.abs(dataMin) * 0.1 || 1
    ;[lo, hi] = [dataMin - pad, dataMax + pad]
  } else {
    [lo, hi] = [dataMin, dataMax]
  }
  const { step, exp } = niceStep(hi - lo, target)
  if (fixed === undefined) {
    lo = clean(Math.floor(lo / step + 1e-9) * step)
    hi = clean(Math.ceil(hi / step - 1e-9) * step)
  }
  const ticks: number[] = []
  for (let i = Math.ceil(lo / step - 1e-9); i <= Math.floor(hi / step + 1e-9); i++) ticks.push(clean(i * step))
  return { min: lo, max: hi, log: false, ticks, labels: tickLabels(ticks, exp) }
}

function logLabel (m: number, k: number): string {
  if (k >= 0 && k < 7) return String(m * pow10(k))
  if (k < 0 && k >= -4) return (m / pow10(-k)).toFixed(-k)
  return `${m}e${k}`
}

/** The nearest 1, 2 or 5 × 10^k at or below (`up` false) or at or above (`up` true) a positive v. */
function snapLog (v: number, up: boolean): number {
  const k = Math.floor(Math.log10(v) + 1e-9)
  const steps = [1, 2, 5, 10].map(m => m * pow10(k))
  const ok = steps.filter(s => up ? s >= v * (1 - 1e-9) : s <= v * (1 + 1e-9))
  return up ? ok[0]! : ok[ok.length - 1]!
}

/** A log10 axis over positive data; the domain is widened to the 1-2-5 values around the data unless `fixed`. */
export function logAxis (dataMin: number, dataMax: number, fixed?: [number, number]): Axis {
  let lo: number, hi: number
  if (fixed !== undefined) {
    [lo, hi] = fixed
  } else if (!(dataMin <= dataMax)) {
    [lo, hi] = [1, 10]
  } else {
    lo = snapLog(dataMin, false)
    hi = snapLog(dataMax, true)
    if (hi <= lo) hi = snapLog(lo * 1.0001, true) // one value: widen to the next 1-2-5 step
  }
  const la = Math.log10(lo)
  const lb = Math.log10(hi)
  const first = Math.floor(la + 1e-9)
  const last = Math.floor(lb + 1e-9)
  const mults = lb - la <= 3.0001 ? [1, 2, 5] : [1]
  const every = Math.max(1, Math.ceil((last - first + 1) / 10)) // at most ~10 labelled decades
  const ticks: number[] = []
  const labels: string[] = []
  for (let k = first; k <= last; k++) {
    if ((k - first) % every !== 0) continue
    for (const m of mults) {
      const v = m * pow10(k)
      const lv = Math.log10(v)
      if (lv < la - 1e-9 || lv > lb + 1e-9) continue
      ticks.push(v)
      labels.push(logLabel(m, k))
    }
  }
  return { min: lo, max: hi, log: true, ticks, labels }
}
