/**
 * report.html: one self-contained page (inline CSS and SVG, no scripts, fonts or remote files)
 * with every table, every plot, the notes and (folded) the summary. The only links are to the sibling
 * CSV/SVG files writeReport puts beside it.
 */
import type { SimReport, Table } from './types.ts'
import { renderPlot } from './svg.ts'
import { displayNumber, escapeXml as esc, sortedKeys } from './text.ts'
import { checkReport } from './validate.ts'

const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; color: #222; max-width: 980px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .3em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #d4d4d4; padding: .25em .6em; text-align: left; vertical-align: top; }
thead th, th[scope=row] { background: #f4f4f4; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
figure { margin: .5em 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
.files, figcaption, footer { color: #666; font-size: .9em; }
nav ul { padding-left: 1.2em; }
`.trim()

function cell (value: string | number | boolean | null): string {
  if (value === null) return '<td class="null">—</td>'
  if (typeof value === 'number') return `<td class="num">${esc(displayNumber(value))}</td>`
  return `<td>${esc(String(value))}</td>`
}

function table (t: Table): string {
  const head = t.columns.map(c => `<th>${esc(c)}</th>`).join('')
  const body = t.rows.map(r => `<tr>${r.map(cell).join('')}</tr>`).join('\n')
  return [
    `<section id="table-${t.id}">`,
    `<h2>${esc(t.title)}</h2>`,
    `<div class="scroll"><table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table></div>`,
    `<p class="files">data: <a href="${t.id}.csv">${t.id}.csv</a></p>`,
    '</section>'
  ].join('\n')
}

export function renderHtml (report: SimReport): string {
  checkReport(report)
  const out: string[] = [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(report.title)}</title>`,
    `<style>\n${CSS}\n</style>`,
    '</head>',
    '<body>',
    `<h1>${esc(report.title)}</h1>`
  ]
  // The comparisons a reader came for first; the flat list of every metric last, folded.
  const contents = [
    ...report.tables.map(t => `<li><a href="#table-${t.id}">${esc(t.title)}</a></li>`),
    ...report.plots.map(p => `<li><a href="#plot-${p.id}">${esc(p.title)}</a></li>`),
    ...(report.notes.length > 0 ? ['<li><a href="#notes">Notes</a></li>'] : []),
    '<li><a href="#summary">Summary</a></li>'
  ]
  out.push(`<nav><ul>\n${contents.join('\n')}\n</ul></nav>`)

  for (const t of report.tables) out.push(table(t))
  for (const p of report.plots) {
    out.push(
      `<section id="plot-${p.id}">`,
      `<h2>${esc(p.title)}</h2>`,
      `<figure>\n${renderPlot(p)}<figcaption>data: <a href="${p.id}.csv">${p.id}.csv</a> · image: <a href="${p.id}.svg">${p.id}.svg</a></figcaption>\n</figure>`,
      '</section>'
    )
  }
  if (report.notes.length > 0) {
    out.push('<section id="notes">', '<h2>Notes</h2>', ...report.notes.map(n => `<p>${esc(n)}</p>`), '</section>')
  }
  const keys = sortedKeys(report.summary)
  out.push('<section id="summary">', '<h2>Summary</h2>')
  out.push(keys.length === 0
    ? '<p>No summary metrics.</p>'
    : `<details><summary>all ${keys.length} metrics</summary>\n<table class="summary"><tbody>\n${keys.map(k => `<tr><th scope="row">${esc(k)}</th>${cell(report.summary[k]!)}</tr>`).join('\n')}\n</tbody></table>\n</details>`)
  out.push('<p class="files">data: <a href="summary.json">summary.json</a></p>', '</section>')
  out.push('<footer><p>Numbers in this page are rounded to 6 significant digits; the CSV files and summary.json hold them in full.</p></footer>')
  out.push('</body>', '</html>')
  return out.join('\n') + '\n'
}
