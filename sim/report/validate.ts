/**
 * Checks a report before anything is rendered or written, so a bad id fails with a clear message
 * and no half-written directory. The types already say most of this; these checks catch plain-JS
 * callers and values (NaN ranges, ragged rows) that types cannot.
 */
import type { Plot, SimReport, Table } from './types.ts'

export class ReportError extends Error {
  override name = 'ReportError'
}

/** Ids become file names and SVG element ids, so: lowercase, digits, "-"; no leading "-" (shells read it as an option). */
const ID = /^[a-z0-9][a-z0-9-]{0,99}$/
const KINDS: ReadonlySet<string> = new Set(['line', 'step', 'scatter-line'])

export function checkId (what: string, id: unknown): void {
  if (typeof id !== 'string' || !ID.test(id)) {
    throw new ReportError(`${what} id ${JSON.stringify(id)} is not a valid file name stem: use lowercase letters, digits and "-", starting with a letter or digit, at most 100 characters (e.g. "latency-cdf")`)
  }
}

function checkRange (where: string, range: unknown, positive: boolean): void {
  if (range === undefined) return
  const ok = Array.isArray(range) && range.length === 2 && range.every(Number.isFinite) && range[0] < range[1]
  if (!ok) throw new ReportError(`${where} must be [min, max] with finite min < max; got ${JSON.stringify(range)}`)
  if (positive && !(range[0] > 0)) throw new ReportError(`${where} must start above 0 on a log axis; got ${JSON.stringify(range)}`)
}

export function checkPlot (plot: Plot): void {
  checkId('plot', plot.id)
  const at = `plot "${plot.id}"`
  if (!KINDS.has(plot.kind)) throw new ReportError(`${at}: kind must be one of ${[...KINDS].join(', ')}; got ${JSON.stringify(plot.kind)}`)
  for (const key of ['title', 'xLabel', 'yLabel'] as const) {
    if (typeof plot[key] !== 'string') throw new ReportError(`${at}: ${key} must be a string`)
  }
  checkRange(`${at}: xRange`, plot.xRange, plot.logX === true)
  checkRange(`${at}: yRange`, plot.yRange, false)
  if (!Array.isArray(plot.series)) throw new ReportError(`${at}: series must be an array`)
  for (const s of plot.series) {
    if (typeof s?.name !== 'string' || !Array.isArray(s.points)) throw new ReportError(`${at}: every series needs a name (string) and points (array)`)
    for (const p of s.points) {
      if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'number' || typeof p[1] !== 'number') {
        throw new ReportError(`${at}, series "${s.name}": every point must be [x, y] numbers; got ${JSON.stringify(p)}`)
      }
    }
  }
  for (const m of plot.markers ?? []) {
    if (typeof m?.x !== 'number' || typeof m.label !== 'string') throw new ReportError(`${at}: every marker needs x (number) and label (string)`)
  }
}

export function checkTable (table: Table): void {
  checkId('table', table.id)
  const at = `table "${table.id}"`
  if (typeof table.title !== 'string') throw new ReportError(`${at}: title must be a string`)
  if (!Array.isArray(table.columns) || !table.columns.every(c => typeof c === 'string')) throw new ReportError(`${at}: columns must be strings`)
  if (!Array.isArray(table.rows)) throw new ReportError(`${at}: rows must be an array`)
  table.rows.forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== table.columns.length) {
      throw new ReportError(`${at}: row ${i} has ${Array.isArray(row) ? row.length : 'no'} cells, the table has ${table.columns.length} columns`)
    }
    for (const cell of row) {
      if (cell !== null && typeof cell !== 'string' && typeof cell !== 'number') throw new ReportError(`${at}: row ${i} has a cell that is not a string, number or null`)
    }
  })
}

export function checkReport (report: SimReport): void {
  if (typeof report.title !== 'string') throw new ReportError('report title must be a string')
  if (typeof report.summary !== 'object' || report.summary === null || Array.isArray(report.summary)) throw new ReportError('report summary must be an object')
  for (const [key, value] of Object.entries(report.summary)) {
    if (value !== null && !['number', 'string', 'boolean'].includes(typeof value)) throw new ReportError(`summary "${key}" must be a number, string, boolean or null`)
  }
  if (!Array.isArray(report.notes) || !report.notes.every(n => typeof n === 'string')) throw new ReportError('report notes must be strings')
  // Tables and plots share one namespace: both write <id>.csv.
  const seen = new Map<string, string>()
  for (const [what, items] of [['table', report.tables], ['plot', report.plots]] as const) {
    if (!Array.isArray(items)) throw new ReportError(`report ${what}s must be an array`)
    for (const item of items) {
      if (what === 'table') checkTable(item as Table)
      else checkPlot(item as Plot)
      const before = seen.get(item.id)
      if (before !== undefined) throw new ReportError(`id "${item.id}" is used by a ${before} and a ${what}; ids name files (<id>.csv), so they must be unique across tables and plots`)
      seen.set(item.id, what)
    }
  }
}
