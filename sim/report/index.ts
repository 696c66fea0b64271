/**
 * The simulator's report writer: one directory per run with `summary.json`, a CSV per table and
 * per plot, an SVG per plot and a self-contained `report.html`, plus a progress bar for stderr.
 * Output is a pure function of the SimReport — no clock, no random ids, sorted summary keys,
 * fixed number formatting — so the same seed gives byte-identical files.
 *
 * The SVG charts are hand-written (svg.ts + ticks.ts, ~300 lines) rather than Vega/Vega-Lite:
 * those pull in dozens of packages and megabytes to draw what is here only polylines on 1-2-5
 * axes, and their output (text measurement, generated ids) is not ours to pin byte for byte.
 *
 * @example
 * ```ts
 * import { writeReport, createProgress, type SimReport } from './sim/report/index.ts'
 *
 * const progress = createProgress({ total: rounds, label: 'quickstart' })  // stderr
 * for (let t = 1; t <= rounds; t++) { step(t); progress.update(t) }
 * progress.finish()
 *
 * const report: SimReport = {
 *   title: 'quickstart — seed 1',
 *   summary: { rounds, accuracy: 0.97 },
 *   tables: [{ id: 'routers', title: 'Router comparison', columns: ['policy', 'regret'], rows: [['mesh', 41.5], ['random', 812]] }],
 *   plots: [{ id: 'regret', title: 'Cumulative regret', kind: 'line', xLabel: 'round', yLabel: 'regret', series: [{ name: 'mesh', points: [[1, 0.4], [2, 0.7]] }] }],
 *   notes: ['Latency is drawn from the configured distribution; CPU time is not modelled.']
 * }
 * const files = await writeReport('out/quickstart-seed-1', report)  // sorted paths written
 * ```
 */
export type { Plot, Series, SimReport, Table } from './types.ts'
export { renderPlot } from './svg.ts'
export { tableToCsv, plotToCsv, parseCsv } from './csv.ts'
export { renderHtml } from './html.ts'
export { reportJson } from './json.ts'
export { renderReport, writeReport } from './write.ts'
export { createProgress, formatDuration, type Progress, type ProgressOptions, type ProgressStream } from './progress.ts'
export { ReportError } from './validate.ts'
