/**
 * RFC 4180 CSV: CRLF line ends, a header row, fields quoted only when they hold a quote, comma,
 * CR or LF. Numbers are the shortest round-trip form (`String(n)`), so a reader gets back the
 * exact double; NaN and ±Infinity are written as such, null as an empty field.
 */
import type { Plot, Table } from './types.ts'
import { checkPlot, checkTable } from './validate.ts'

export type Cell = string | number | null

export function csvField (cell: Cell): string {
  if (cell === null) return ''
  const text = typeof cell === 'number' ? String(cell) : cell
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

function csv (rows: Cell[][]): string {
  return rows.map(row => row.map(csvField).join(',') + '\r\n').join('')
}

export function tableToCsv (table: Table): string {
  checkTable(table)
  return csv([table.columns, ...table.rows])
}

/** Long format, one row per point: series,x,y — every point, including the ones a plot skips. */
export function plotToCsv (plot: Plot): string {
  checkPlot(plot)
  const rows: Cell[][] = [['series', 'x', 'y']]
  for (const s of plot.series) for (const [x, y] of s.points) rows.push([s.name, x, y])
  return csv(rows)
}

/** Parses RFC 4180 text into rows of strings (accepts LF line ends too); the inverse of the writers. */
export function parseCsv (text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let i = 0
  let quoted = false
  while (i < text.length) {
    const c = text[i]!
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue }
      if (c === '"') { quoted = false; i++; continue }
      field += c
      i++
      continue
    }
    if (c === '"' && field === '') { quoted = true; i++; continue }
    if (c === ',') { row.push(field); field = ''; i++; continue }
    if (c === '\r' || c === '\n') {
      row.push(field)
      rows.push(row)
      row = []
      field = ''
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1
      continue
    }
    field += c
    i++
  }
  if (quoted) throw new SyntaxError('CSV ends inside a quoted field')
  if (field !== '' || row.length > 0) { row.push(field); rows.push(row) }
  return rows
}
