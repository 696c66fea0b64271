/**
 * One plot as a standalone SVG line chart. Everything is a pure function of the Plot: fixed
 * size, fixed palette, coordinates with toFixed(2), element ids derived from the plot id — so the
 * same plot is the same bytes.
 */
import type { Plot } from './types.ts'
import { linearAxis, logAxis, type Axis } from './ticks.ts'
import { escapeXml } from './text.ts'
import { checkPlot } from './validate.ts'

export const WIDTH = 720
export const HEIGHT = 420
const TOP = 46
const BOTTOM = HEIGHT - 58
const RIGHT = WIDTH - 190 // the legend lives in the last 190 px
const LEGEND_X = RIGHT + 14
const LEGEND_CHARS = 20 // per line, about 140 px at 12 px
const LEGEND_ROW = 17
const PAD = 3 // the clip reaches this far past the axes so lines and dots on the edge are not cut in half
const FONT = 'system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif'

/** Tableau 10: distinct, colour-blind-aware, readable on white. Past ten series, dashes tell them apart. */
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac']
const DASHES = ['', '7 4', '2 3']

/** Pixel coordinate text: two decimals, no "-0.00", clamped so wild outliers stay plain numbers (the clip hides them). */
function px (v: number): string {
  const s = Math.min(1e5, Math.max(-1e5, v)).toFixed(2)
  return s === '-0.00' ? '0.00' : s
}

function truncate (text: string, max: number): string {
  const chars = [...text]
  return chars.length <= max ? text : chars.slice(0, max - 1).join('') + '…'
}

/** A legend name on at most two lines of `max` characters, broken at spaces; the rest is cut with "…". */
export function wrapName (name: string, max: number): string[] {
  if ([...name].length <= max) return [name]
  const words = name.split(' ')
  let first = ''
  while (words.length > 0 && [...(first === '' ? words[0]! : `${first} ${words[0]}`)].length <= max) {
    first = first === '' ? words.shift()! : `${first} ${words.shift()!}`
  }
  if (first === '') return [truncate(name, max)] // one long word
  return [first, truncate(words.join(' '), max)]
}

/**
 * Keeps, in each run of consecutive vertices in the same pixel column, the first, lowest, highest
 * and last (M4): the drawn line is the same to the pixel, and a 100 000-round regret curve stays
 * a few thousand vertices.
 */
function decimate (pts: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = []
  for (let i = 0; i < pts.length;) {
    const col = Math.floor(pts[i]![0])
    let j = i + 1
    while (j < pts.length && Math.floor(pts[j]![0]) === col) j++
    if (j - i <= 4) {
      for (let k = i; k < j; k++) out.push(pts[k]!)
    } else {
      let lo = i
      let hi = i
      for (let k = i + 1; k < j; k++) {
        if (pts[k]![1] < pts[lo]![1]) lo = k
        if (pts[k]![1] > pts[hi]![1]) hi = k
      }
      for (const k of [...new Set([i, lo, hi, j - 1])].sort((a, b) => a - b)) out.push(pts[k]!)
    }
    i = j
  }
  return out
}

function scale (axis: Axis, from: number, to: number): (v: number) => number {
  const f = axis.log ? Math.log10 : (v: number) => v
  const a = f(axis.min)
  const span = f(axis.max) - a
  return v => from + (f(v) - a) / span * (to - from)
}

/** Renders the plot; throws a ReportError for a bad id, kind or range. */
export function renderPlot (plot: Plot): string {
  checkPlot(plot)
  const logX = plot.logX === true
  // Only finite points (and x > 0 on a log axis) are drawn.
  const series = plot.series.map(s => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!logX || x > 0)))
  let xMin = Infinity
  let xMax = -Infinity
  let yMin = Infinity
  let yMax = -Infinity
  for (const pts of series) {
    for (const [x, y] of pts) {
      if (x < xMin) xMin = x
      if (x > xMax) xMax = x
      if (y < yMin) yMin = y
      if (y > yMax) yMax = y
    }
  }
  const xAxis = logX ? logAxis(xMin, xMax, plot.xRange) : linearAxis(xMin, xMax, 7, plot.xRange)
  const yAxis = linearAxis(yMin, yMax, 6, plot.yRange)
  // The left margin fits the longest y label (about 6.6 px a character at 11 px).
  const left = Math.round(Math.max(64, 36 + 6.6 * Math.max(0, ...yAxis.labels.map(l => l.length))))
  const sx = scale(xAxis, left, RIGHT)
  const sy = scale(yAxis, BOTTOM, TOP)
  const clip = `clip-${plot.id}`
  const midX = (left + RIGHT) / 2
  const midY = (TOP + BOTTOM) / 2

  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="${FONT}" font-size="12" role="img" aria-label="${escapeXml(plot.title)}">`)
  out.push(`<title>${escapeXml(plot.title)}</title>`)
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`)
  out.push(`<defs><clipPath id="${clip}"><rect x="${px(left - PAD)}" y="${px(TOP - PAD)}" width="${px(RIGHT - left + 2 * PAD)}" height="${px(BOTTOM - TOP + 2 * PAD)}"/></clipPath></defs>`)
  out.push(`<text x="${px(WIDTH / 2)}" y="26" text-anchor="middle" font-size="15" font-weight="600" fill="#222">${escapeXml(truncate(plot.title, 72))}</text>`)

  // Grid and tick labels.
  out.push('<g stroke="#e6e6e6" stroke-width="1">')
  for (const t of xAxis.ticks) out.push(`<line x1="${px(sx(t))}" y1="${px(TOP)}" x2="${px(sx(t))}" y2="${px(BOTTOM)}"/>`)
  for (const t of yAxis.ticks) out.push(`<line x1="${px(left)}" y1="${px(sy(t))}" x2="${px(RIGHT)}" y2="${px(sy(t))}"/>`)
  out.push('</g>')
  out.push('<g font-size="11" fill="#444">')
  xAxis.ticks.forEach((t, i) => out.push(`<text x="${px(sx(t))}" y="${px(BOTTOM + 17)}" text-anchor="middle">${escapeXml(xAxis.labels[i]!)}</text>`))
  yAxis.ticks.forEach((t, i) => out.push(`<text x="${px(left - 7)}" y="${px(sy(t) + 4)}" text-anchor="end">${escapeXml(yAxis.labels[i]!)}</text>`))
  out.push('</g>')
  out.push(`<path d="M${px(left)} ${px(TOP)}V${px(BOTTOM)}H${px(RIGHT)}" fill="none" stroke="#555" stroke-width="1"/>`)
  out.push(`<text x="${px(midX)}" y="${px(HEIGHT - 16)}" text-anchor="middle" fill="#222">${escapeXml(plot.xLabel)}${logX ? ' — log scale' : ''}</text>`)
  out.push(`<text transform="translate(16 ${px(midY)}) rotate(-90)" text-anchor="middle" fill="#222">${escapeXml(plot.yLabel)}</text>`)

  // Markers: dashed vertical lines with their label at the top, flipped left near the right edge.
  for (const m of plot.markers ?? []) {
    if (!Number.isFinite(m.x) || (logX && m.x <= 0)) continue
    const x = sx(m.x)
    if (x < left - 0.5 || x > RIGHT + 0.5) continue
    const flip = x > RIGHT - 120
    out.push(`<line x1="${px(x)}" y1="${px(TOP)}" x2="${px(x)}" y2="${px(BOTTOM)}" stroke="#666" stroke-width="1" stroke-dasharray="4 3"/>`)
    out.push(`<text x="${px(flip ? x - 4 : x + 4)}" y="${px(TOP + 12)}" text-anchor="${flip ? 'end' : 'start'}" font-size="11" fill="#444">${escapeXml(m.label)}</text>`)
  }

  // Series, clipped to the plot area (a fixed range may cut points off).
  out.push(`<g clip-path="url(#${clip})" fill="none" stroke-width="1.75" stroke-linejoin="round" stroke-linecap="round">`)
  series.forEach((pts, i) => {
    if (pts.length === 0) return
    const colour = PALETTE[i % PALETTE.length]!
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length]!
    const vertices: Array<[number, number]> = []
    pts.forEach(([x, y], k) => {
      if (plot.kind === 'step' && k > 0) vertices.push([sx(x), sy(pts[k - 1]![1])])
      vertices.push([sx(x), sy(y)])
    })
    if (pts.length > 1) {
      const coords: string[] = []
      for (const [x, y] of decimate(vertices)) {
        const c = `${px(x)},${px(y)}`
        if (c !== coords[coords.length - 1]) coords.push(c)
      }
      out.push(`<polyline points="${coords.join(' ')}" stroke="${colour}"${dash === '' ? '' : ` stroke-dasharray="${dash}"`}/>`)
    }
    // Dots for scatter-line, and for a lone point, which a polyline would not show.
    if (plot.kind === 'scatter-line' || pts.length === 1) {
      const dots = new Set(pts.map(([x, y]) => `<circle cx="${px(sx(x))}" cy="${px(sy(y))}" r="2.75" fill="${colour}" stroke="none"/>`))
      out.push(...dots)
    }
  })
  out.push('</g>')
  if (series.every(pts => pts.length === 0)) {
    out.push(`<text x="${px(midX)}" y="${px(midY)}" text-anchor="middle" font-size="14" fill="#888">no data</text>`)
  }

  // Legend: one entry per series, long names on two lines; a cut name keeps its full text as a tooltip.
  let y = TOP + 8
  for (const [i, s] of plot.series.entries()) {
    const lines = wrapName(s.name, LEGEND_CHARS)
    if (y + (lines.length + 1) * LEGEND_ROW > BOTTOM + 8 && i < plot.series.length - 1) {
      out.push(`<text x="${px(LEGEND_X)}" y="${px(y + 4)}" fill="#444">… ${plot.series.length - i} more</text>`)
      break
    }
    const colour = PALETTE[i % PALETTE.length]!
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length]!
    const cut = lines.join(' ') !== s.name
    const text = lines.map((l, k) => `<tspan x="${px(LEGEND_X + 28)}" y="${px(y + 4 + k * 14)}">${escapeXml(l)}</tspan>`).join('')
    out.push(`<g>${cut ? `<title>${escapeXml(s.name)}</title>` : ''}<line x1="${px(LEGEND_X)}" y1="${px(y)}" x2="${px(LEGEND_X + 22)}" y2="${px(y)}" stroke="${colour}" stroke-width="2.5"${dash === '' ? '' : ` stroke-dasharray="${dash}"`}/><text fill="#222">${text}</text></g>`)
    y += LEGEND_ROW + (lines.length - 1) * 14
  }
  out.push('</svg>')
  return out.join('\n') + '\n'
}
