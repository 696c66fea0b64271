/**
 * summary.json: the report with a fixed key order (the schema's order; summary keys sorted) and
 * a layout people can read and diff — objects one key a line, arrays of plain values (a point, a
 * table row) on one line. JSON has no NaN or Infinity: they are written as null, as JSON.stringify does.
 */
import type { SimReport } from './types.ts'
import { sortedKeys } from './text.ts'

/** The report rebuilt with its keys in a fixed order; optional fields left out when absent. */
export function canonicalReport (report: SimReport): SimReport {
  return {
    title: report.title,
    // fromEntries defines own properties, so even a "__proto__" key survives.
    summary: Object.fromEntries(sortedKeys(report.summary).map(k => [k, report.summary[k]!])),
    tables: report.tables.map(t => ({ id: t.id, title: t.title, columns: t.columns, rows: t.rows })),
    plots: report.plots.map(p => ({
      id: p.id,
      title: p.title,
      kind: p.kind,
      xLabel: p.xLabel,
      yLabel: p.yLabel,
      ...(p.xRange === undefined ? {} : { xRange: p.xRange }),
      ...(p.yRange === undefined ? {} : { yRange: p.yRange }),
      ...(p.logX === undefined ? {} : { logX: p.logX }),
      ...(p.markers === undefined ? {} : { markers: p.markers.map(m => ({ x: m.x, label: m.label })) }),
      series: p.series.map(s => ({ name: s.name, points: s.points })) // last: it is the bulk
    })),
    notes: report.notes
  }
}

function isPlain (v: unknown): boolean {
  return v === null || typeof v !== 'object'
}

function scalar (v: unknown): string {
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null'
  return JSON.stringify(v) ?? 'null'
}

/** Pretty JSON in insertion order; undefined object values are skipped, as JSON.stringify does. */
export function prettyJson (value: unknown, indent = ''): string {
  if (isPlain(value)) return scalar(value)
  const inner = indent + '  '
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]'
    if (value.every(isPlain)) return `[${value.map(scalar).join(', ')}]`
    return `[\n${value.map(v => inner + prettyJson(v, inner)).join(',\n')}\n${indent}]`
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
  if (entries.length === 0) return '{}'
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${prettyJson(v, inner)}`).join(',\n')}\n${indent}}`
}

export function reportJson (report: SimReport): string {
  return prettyJson(canonicalReport(report)) + '\n'
}
