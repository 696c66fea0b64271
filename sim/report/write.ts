/**
 * Writes a report directory. Everything is checked and rendered in memory first, so a bad id
 * throws before the directory is even created; then the files are written in one go.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { SimReport } from './types.ts'
import { plotToCsv, tableToCsv } from './csv.ts'
import { renderHtml } from './html.ts'
import { reportJson } from './json.ts'
import { renderPlot } from './svg.ts'
import { checkReport } from './validate.ts'

/** The files of a report, by name, as they would be written: summary.json, <id>.csv, <plot id>.svg, report.html. */
export function renderReport (report: SimReport): Map<string, string> {
  checkReport(report)
  const files = new Map<string, string>()
  files.set('summary.json', reportJson(report))
  for (const t of report.tables) files.set(`${t.id}.csv`, tableToCsv(t))
  for (const p of report.plots) {
    files.set(`${p.id}.csv`, plotToCsv(p))
    files.set(`${p.id}.svg`, renderPlot(p))
  }
  files.set('report.html', renderHtml(report))
  return files
}

/**
 * Writes the report into `dir` (created if missing; files of the same name are replaced, others
 * left alone) and returns the paths written, sorted. Throws a ReportError for a bad or duplicate id.
 */
export async function writeReport (dir: string, report: SimReport): Promise<string[]> {
  const files = renderReport(report)
  await mkdir(dir, { recursive: true })
  const paths = [...files.keys()].sort().map(name => join(dir, name))
  await Promise.all([...files].map(([name, text]) => writeFile(join(dir, name), text, 'utf8')))
  return paths
}
