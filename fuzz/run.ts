/**
 * Runs a target's cases and classifies each outcome: accepted, refused with a documented error
 * (counted by reason), or a finding — any other exception, a broken invariant, or (when asked) a
 * case slower than `slowMs`. Every finding keeps its reproducer: seed, case index, input in hex.
 */
import { caseRng } from './rng.ts'
import { Finding, type Target } from './target.ts'

export interface FuzzFinding {
  target: string
  kind: 'exception' | 'invariant' | 'slow' | 'generator'
  message: string
  stack?: string
  seed: number
  index: number
  ms: number
  /** The input, hex (cut at 4 KiB: the seed and index regenerate it whole). */
  hex: string
  bytes: number
  /** Cases that hit the same finding. */
  count: number
}

export interface TargetReport {
  target: string
  cases: number
  accepted: number
  /** Refusal reasons, digits and quoted text folded, with counts. */
  reasons: Map<string, number>
  slow: number
  maxMs: number
  ms: number
  findings: FuzzFinding[]
}

export interface RunOptions {
  seed: number
  cases: number
  /** Cases above this many ms are findings (the CLI); tests pass undefined and never time. */
  slowMs?: number
  /** First case index: lets a reproducer re-run one case. */
  from?: number
}

export function runTarget (target: Target, o: RunOptions): TargetReport {
  const report: TargetReport = { target: target.name, cases: 0, accepted: 0, reasons: new Map(), slow: 0, maxMs: 0, ms: 0, findings: [] }
  const byKey = new Map<string, FuzzFinding>()
  const add = (f: Omit<FuzzFinding, 'count'>): void => {
    const key = `${f.kind} ${fold(f.message)}`
    const seen = byKey.get(key)
    if (seen !== undefined) {
      seen.count++
      if (f.kind === 'slow' && f.ms > seen.ms) Object.assign(seen, f, { count: seen.count }) // reproduce the slowest
      return
    }
    const finding = { ...f, count: 1 }
    byKey.set(key, finding)
    report.findings.push(finding)
  }
  const start = performance.now()
  const from = o.from ?? 0
  for (let index = from; index < from + o.cases; index++) {
    let input: Uint8Array
    try {
      input = target.generate(caseRng(o.seed, target.name, index))
    } catch (err) { // a bug in the fuzzer, not in the decoder: say so and go on
      add({ target: target.name, seed: o.seed, index, hex: '', bytes: 0, kind: 'generator', message: String((err as Error)?.stack ?? err).slice(0, 600), ms: 0 })
      continue
    }
    const at = { target: target.name, seed: o.seed, index, hex: hex(input), bytes: input.byteLength }
    const t0 = performance.now()
    let outcome: { ok: true } | { ok: false, err: unknown }
    try {
      target.check(input)
      outcome = { ok: true }
    } catch (err) {
      outcome = { ok: false, err }
    }
    const ms = performance.now() - t0
    report.cases++
    report.maxMs = Math.max(report.maxMs, ms)
    if (outcome.ok) report.accepted++
    else if (outcome.err instanceof Finding) add({ ...at, kind: 'invariant', message: outcome.err.message, ms })
    else if (expected(target, outcome.err)) {
      const reason = fold((outcome.err as Error).message)
      report.reasons.set(reason, (report.reasons.get(reason) ?? 0) + 1)
    } else {
      const err = outcome.err instanceof Error ? outcome.err : new Error(String(outcome.err))
      add({ ...at, kind: 'exception', message: `${err.name}: ${err.message.slice(0, 300)}`, stack: err.stack?.split('\n').slice(0, 8).join('\n'), ms })
    }
    // A garbage collection or a compilation can stall any one case: slow means slow on a re-run too.
    const limit = o.slowMs === undefined ? undefined : target.slowMs ?? o.slowMs
    const slowest = limit !== undefined && ms > limit ? Math.min(ms, retime(target, input), retime(target, input)) : 0
    if (limit !== undefined && slowest > limit) {
      report.slow++
      add({ ...at, kind: 'slow', message: `took ${slowest.toFixed(0)} ms for ${input.byteLength} bytes (limit ${limit} ms)`, ms: slowest })
    }
  }
  report.ms = performance.now() - start
  return report
}

function retime (target: Target, input: Uint8Array): number {
  const copy = input.slice() // a fresh array: decoders cache what they found canonical by identity
  const t0 = performance.now()
  try { target.check(copy) } catch {}
  return performance.now() - t0
}

function expected (target: Target, err: unknown): boolean {
  if (!(err instanceof Error)) return false
  return target.errors.some(c => err instanceof c) || target.accepts?.(err) === true
}

/** A reason without its particulars, so "field 3" and "field 7" count as one reason. */
export function fold (message: string): string {
  return message.replace(/"[^"]*"|'[^']*'/g, '"…"').replace(/0x[0-9a-f]+|\d+(\.\d+)?/gi, 'N').replace(/12D3KooW\w+/g, '<peer>').slice(0, 120)
}

function hex (b: Uint8Array): string {
  return Buffer.from(b.subarray(0, 4096)).toString('hex') + (b.byteLength > 4096 ? '…' : '')
}
