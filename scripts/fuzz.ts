/**
 * `npm run fuzz -- [--cases N] [--seed S] [--target NAME[,NAME]] [--case I] [--json]`: feeds every
 * decoder of outside input mutated valid encodings and noise (fuzz/). N cases in all (default
 * 100k), split evenly over the targets. Prints per target the cases, the distinct refusal reasons
 * and the findings, each with a reproducer; exits 1 on any finding. --case I re-runs one case;
 * --json prints one JSON line per target and a last line with the totals.
 */
import { parseArgs } from 'node:util'
import { allTargets } from '../fuzz/targets/index.ts'
import { runTarget, type TargetReport } from '../fuzz/run.ts'

const SLOW_MS = 50

const { values } = parseArgs({
  options: { cases: { type: 'string' }, seed: { type: 'string' }, target: { type: 'string' }, case: { type: 'string' }, json: { type: 'boolean' }, reasons: { type: 'boolean' } }
})
const total = Number(values.cases ?? 100_000)
const seed = Number(values.seed ?? 1)
if (!Number.isSafeInteger(total) || total < 1 || !Number.isSafeInteger(seed)) {
  console.error('--cases and --seed take whole numbers: npm run fuzz -- [--cases N] [--seed S] [--target NAME] [--case I] [--json]')
  process.exit(2)
}
const all = await allTargets()
const names = values.target?.split(',')
const unknown = names?.filter(n => !all.some(t => t.name === n)) ?? []
if (unknown.length > 0) {
  console.error(`no target "${unknown[0]}"; targets:\n` + all.map(t => `  ${t.name.padEnd(17)} ${t.about}`).join('\n'))
  process.exit(2)
}
const targets = names === undefined ? all : all.filter(t => names.includes(t.name))
const one = values.case === undefined ? undefined : Number(values.case)
const perTarget = one !== undefined ? 1 : Math.max(1, Math.round(total / targets.length))

const reports: TargetReport[] = []
const started = performance.now()
for (const target of targets) {
  const r = runTarget(target, { seed, cases: perTarget, slowMs: SLOW_MS, ...(one !== undefined ? { from: one } : {}) })
  reports.push(r)
  if (values.json === true) {
    console.log(JSON.stringify({ target: r.target, cases: r.cases, accepted: r.accepted, reasons: r.reasons.size, slow: r.slow, maxMs: round(r.maxMs), casesPerSecond: Math.round(r.cases / (r.ms / 1000)), findings: r.findings }))
    continue
  }
  console.log(`${r.target.padEnd(17)} ${String(r.cases).padStart(7)} cases  ${String(r.accepted).padStart(6)} accepted  ${String(r.reasons.size).padStart(3)} reasons  ` +
    `${String(Math.round(r.cases / (r.ms / 1000))).padStart(6)} cases/s  max ${round(r.maxMs)} ms  ${r.findings.length === 0 ? 'no findings' : `${r.findings.length} FINDINGS`}`)
  if (values.reasons === true) for (const [reason, n] of [...r.reasons].sort((a, b) => b[1] - a[1])) console.log(`    ${String(n).padStart(6)}  ${reason}`)
  for (const f of r.findings) {
    console.log(`  ${f.kind}: ${f.message} (${f.count} case${f.count === 1 ? '' : 's'})`)
    if (f.stack !== undefined) console.log(f.stack.split('\n').slice(1).map(l => `    ${l.trim()}`).join('\n'))
    console.log(`    reproduce: npm run fuzz -- --target ${f.target} --seed ${f.seed} --case ${f.index}`)
    console.log(`    input (${f.bytes} bytes): ${f.hex.length > 400 ? `${f.hex.slice(0, 400)}…` : f.hex}`)
  }
}
const seconds = (performance.now() - started) / 1000
const cases = reports.reduce((s, r) => s + r.cases, 0)
const findings = reports.reduce((s, r) => s + r.findings.length, 0)
if (values.json === true) console.log(JSON.stringify({ total: true, cases, seconds: round(seconds), casesPerSecond: Math.round(cases / seconds), seed, findings }))
else console.log(`${cases} cases in ${seconds.toFixed(1)} s (${Math.round(cases / seconds)} cases/s), seed ${seed}: ${findings === 0 ? 'no findings' : `${findings} findings`}`)
process.exit(findings === 0 ? 0 : 1)

function round (ms: number): number { return Math.round(ms * 10) / 10 }
