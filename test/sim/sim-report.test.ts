import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createProgress, parseCsv, plotToCsv, renderHtml, renderPlot, ReportError, tableToCsv, writeReport, type Plot, type SimReport } from '../../sim/report/index.ts'
import { linearAxis, logAxis, niceStep } from '../../sim/report/ticks.ts'
import { wrapName } from '../../sim/report/svg.ts'

function regret (rate: number, n: number): Array<[number, number]> {
  const points: Array<[number, number]> = []
  let r = 0
  for (let t = 1; t <= n; t++) { r += rate * (1 + Math.sin(t * rate)); points.push([t, r]) }
  return points
}

function sampleReport (): SimReport {
  return {
    title: 'quickstart — seed 1 <&> "q" \'a\'',
    summary: { seed: 1, accuracy: 0.9712345678, converged: true, label: 'a, "b"', missing: null },
    tables: [{
      id: 'routers',
      title: 'Router comparison',
      columns: ['policy', 'regret', 'note'],
      rows: [['mesh', 41.5, null], ['random', 812.25, 'has, comma'], ['symphony-coord', 96, 'line\nbreak "quoted"']]
    }],
    plots: [
      {
        id: 'regret',
        title: 'Cumulative regret <by> router & more',
        kind: 'line',
        xLabel: 'round',
        yLabel: 'regret',
        series: [{ name: 'mesh', points: regret(0.1, 3000) }, { name: 'random', points: regret(0.5, 3000) }, { name: 'greedy-similarity', points: regret(0.3, 3000) }],
        markers: [{ x: 1500, label: 'shock at t=1500 <s>' }]
      },
      {
        id: 'latency-cdf',
        title: 'Latency CDF',
        kind: 'step',
        xLabel: 'latency (ms)',
        yLabel: 'fraction',
        yRange: [0, 1],
        series: [{ name: 'mesh', points: [[10, 0.25], [20, 0.5], [40, 0.75], [80, 1]] }]
      }
    ],
    notes: ['Latency is sampled, not measured <checked> & noted.']
  }
}

/** A tiny well-formedness check: every tag closes in order, attributes are quoted, no bare "&". */
function wellFormed (xml: string): void {
  const stack: string[] = []
  const body = xml.replace(/<!doctype[^>]*>/i, '')
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    const [, close, name, , selfClose] = m
    if (selfClose === '/') continue
    if (close === '/') expect(stack.pop(), `closing </${name}>`).toBe(name)
    else stack.push(name!)
  }
  expect(stack).toEqual([])
  // Every "<" starts a tag the pattern above accepted.
  expect(body.replace(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g, '')).not.toMatch(/</)
  expect(body).not.toMatch(/&(?!(amp|lt|gt|quot|#39);)/)
}

describe('sim report: SVG plots', () => {
  it('draws one polyline per series, escapes text, and is well-formed', () => {
    const plot = sampleReport().plots[0]!
    const svg = renderPlot(plot)
    wellFormed(svg)
    expect(svg.match(/<polyline /g)).toHaveLength(3)
    expect(svg).toContain('<title>Cumulative regret &lt;by&gt; router &amp; more</title>')
    expect(svg).toContain('shock at t=1500 &lt;s&gt;')
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="720" height="420"/)
    expect(svg).not.toMatch(/NaN|Infinity|undefined/)
    // 3000 points over ~460 px columns are thinned to a few per column.
    const vertices = svg.match(/<polyline points="([^"]*)"/)![1]!.split(' ').length
    expect(vertices).toBeLessThan(2000)
    expect(renderPlot(plot)).toBe(svg)
  })

  it('draws a step plot as a staircase', () => {
    const svg = renderPlot(sampleReport().plots[1]!)
    const pts = svg.match(/<polyline points="([^"]*)"/)![1]!.split(' ').map(p => p.split(',').map(Number))
    expect(pts).toHaveLength(7) // 4 points, 3 risers
    for (let i = 1; i < pts.length; i++) {
      // Alternately horizontal then vertical segments.
      const [x0, y0] = pts[i - 1]!
      const [x1, y1] = pts[i]!
      expect(i % 2 === 1 ? y1 === y0 : x1 === x0).toBe(true)
    }
  })

  it('handles empty series, a single point, constant y, non-finite points and a log axis', () => {
    const base = { id: 'edge', title: 'edge', kind: 'line', xLabel: 'x', yLabel: 'y' } as const
    const empty = renderPlot({ ...base, series: [] })
    wellFormed(empty)
    expect(empty).toContain('no data')
    expect(empty).not.toContain('<polyline')

    const single = renderPlot({ ...base, series: [{ name: 'one', points: [[3, 7]] }] })
    wellFormed(single)
    expect(single).not.toContain('<polyline')
    expect(single.match(/<circle /g)).toHaveLength(1)
    expect(single).not.toMatch(/NaN|Infinity/)

    const flat = renderPlot({ ...base, series: [{ name: 'flat', points: [[0, 0], [1, 0], [2, 0]] }] })
    expect(flat).not.toMatch(/NaN|Infinity/)

    const holes = renderPlot({ ...base, series: [{ name: 'holes', points: [[0, 1], [1, NaN], [2, Infinity], [-Infinity, 2], [3, 4]] }] })
    expect(holes).not.toMatch(/NaN|Infinity/)
    expect(holes.match(/<polyline points="([^"]*)"/)![1]!.split(' ')).toHaveLength(2)

    const log = renderPlot({ ...base, logX: true, series: [{ name: 'l', points: [[0, 1], [-5, 1], [1, 1], [1000, 2]] }] })
    wellFormed(log)
    expect(log).toContain('log scale')
    expect(log.match(/<polyline points="([^"]*)"/)![1]!.split(' ')).toHaveLength(2) // x <= 0 skipped
    for (const label of ['>1<', '>10<', '>100<', '>1000<']) expect(log).toContain(label)
  })

  it('chooses 1-2-5 ticks and clean labels', () => {
    expect(niceStep(10, 5)).toEqual({ step: 2, exp: 0 })
    expect(niceStep(0.19, 5)).toEqual({ step: 0.05, exp: -2 })
    expect(niceStep(700, 7)).toEqual({ step: 100, exp: 2 })
    const a = linearAxis(0.03, 0.97, 6)
    expect([a.min, a.max]).toEqual([0, 1])
    expect(a.labels).toEqual(['0.0', '0.2', '0.4', '0.6', '0.8', '1.0'])
    const fixed = linearAxis(0.5, 0.6, 6, [0, 1])
    expect([fixed.min, fixed.max, fixed.ticks[0], fixed.ticks.at(-1)]).toEqual([0, 1, 0, 1])
    expect(linearAxis(-3, 3, 6).labels).not.toContain('-0')
    expect(linearAxis(0, 5e8, 6).labels.at(-1)).toBe('5e8')
    const c = linearAxis(0.95, 0.95, 6)
    expect(c.min).toBeLessThan(0.95)
    expect(c.max).toBeGreaterThan(0.95)
    expect(logAxis(40, 10240).labels).toEqual(['20', '50', '100', '200', '500', '1000', '2000', '5000', '10000', '20000'])
    expect(logAxis(0.001, 1e9).labels).toEqual(['0.001', '0.1', '10', '1000', '100000', '1e7', '1e9'])
  })

  it('wraps long legend names on two lines', () => {
    expect(wrapName('mesh', 20)).toEqual(['mesh'])
    expect(wrapName('CP-WBFT mean-confidence rule', 20)).toEqual(['CP-WBFT', 'mean-confidence rule'])
    expect(wrapName('averyveryveryverylongname', 20)).toEqual(['averyveryveryverylo…'])
  })

  it('rejects bad ids, kinds and ranges', () => {
    const plot = sampleReport().plots[1]!
    for (const id of ['Bad', 'a b', '-x', '', 'x/y', '../up', 'a'.repeat(101)]) {
      expect(() => renderPlot({ ...plot, id })).toThrow(ReportError)
    }
    expect(() => renderPlot({ ...plot, kind: 'bars' as Plot['kind'] })).toThrow(/kind/)
    expect(() => renderPlot({ ...plot, yRange: [1, 1] })).toThrow(/yRange/)
    expect(() => renderPlot({ ...plot, logX: true, xRange: [0, 10] })).toThrow(/log axis/)
  })
})

describe('sim report: CSV', () => {
  it('escapes quotes, commas and newlines per RFC 4180', () => {
    const table = sampleReport().tables[0]!
    const text = tableToCsv(table)
    expect(text).toBe('policy,regret,note\r\nmesh,41.5,\r\nrandom,812.25,"has, comma"\r\nsymphony-coord,96,"line\nbreak ""quoted"""\r\n')
    expect(parseCsv(text)).toEqual([table.columns, ...table.rows.map(r => r.map(c => c === null ? '' : String(c)))])
  })

  it('round-trips any strings and numbers (property)', () => {
    const cell = fc.oneof(fc.string({ unit: fc.constantFrom('a', 'b', ',', '"', '\n', '\r', ' ', 'é', '😀') }), fc.double(), fc.constant(null))
    fc.assert(fc.property(fc.integer({ min: 1, max: 4 }).chain(n => fc.tuple(fc.array(fc.string(), { minLength: n, maxLength: n }), fc.array(fc.array(cell, { minLength: n, maxLength: n }), { maxLength: 6 }))), ([columns, rows]) => {
      const parsed = parseCsv(tableToCsv({ id: 't', title: 't', columns, rows }))
      // A lone empty field on a line reads back as one empty cell, so compare row by row.
      expect(parsed).toEqual([columns, ...rows].map(r => r.map(c => c === null ? '' : String(c))))
      rows.forEach((r, i) => r.forEach((c, j) => {
        if (typeof c === 'number') expect(Object.is(Number(parsed[i + 1]![j]), c === 0 ? 0 : c) || Number.isNaN(c)).toBe(true)
      }))
    }), { numRuns: 300 })
  })

  it('writes a plot in long format with every point', () => {
    const csv = plotToCsv({ id: 'p', title: 'p', kind: 'line', xLabel: 'x', yLabel: 'y', series: [{ name: 'a,b', points: [[1, 0.1], [2, NaN]] }, { name: 'c', points: [[1e21, -0]] }] })
    expect(csv).toBe('series,x,y\r\n"a,b",1,0.1\r\n"a,b",2,NaN\r\nc,1e+21,0\r\n')
  })
})

describe('sim report: directory', () => {
  it('writes every file, sorted, and the same report gives the same bytes', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sim-report-'))
    try {
      const a = join(root, 'a')
      const b = join(root, 'nested', 'b')
      const written = await writeReport(a, sampleReport())
      const names = ['latency-cdf.csv', 'latency-cdf.svg', 'regret.csv', 'regret.svg', 'report.html', 'routers.csv', 'summary.json']
      expect(written).toEqual(names.map(n => join(a, n)))
      await writeReport(b, sampleReport())
      expect((await readdir(b)).sort()).toEqual(names)
      for (const name of names) expect((await readFile(join(b, name))).equals(await readFile(join(a, name))), name).toBe(true)

      const json = await readFile(join(a, 'summary.json'), 'utf8')
      expect(JSON.parse(json)).toEqual(sampleReport())
      // Summary keys sorted; schema order for the rest.
      expect(Object.keys(JSON.parse(json).summary)).toEqual(['accuracy', 'converged', 'label', 'missing', 'seed'])
      expect(Object.keys(JSON.parse(json))).toEqual(['title', 'summary', 'tables', 'plots', 'notes'])
      expect(json).toContain('\n            [10, 0.25],\n') // a point on one line

      const html = await readFile(join(a, 'report.html'), 'utf8')
      wellFormed(html.replace(/<(meta|link)[^>]*>/g, '')) // void elements have no closing tag
      expect(html).toContain('<h1>quickstart — seed 1 &lt;&amp;&gt; &quot;q&quot; &#39;a&#39;</h1>')
      expect(html.match(/<svg /g)).toHaveLength(2)
      expect(html).not.toMatch(/<script|<link|src=|url\((?!#)/)
      expect(html).toContain('<p>Latency is sampled, not measured &lt;checked&gt; &amp; noted.</p>')
      expect(await readFile(join(a, 'regret.svg'), 'utf8')).toBe(renderPlot(sampleReport().plots[0]!))
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  })

  it('rejects a bad or duplicate id before creating anything', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sim-report-'))
    try {
      const bad = sampleReport()
      bad.plots[0]!.id = 'Regret Curve'
      const dir = join(root, 'out')
      await expect(writeReport(dir, bad)).rejects.toThrow(/plot id "Regret Curve" is not a valid file name stem/)
      expect(existsSync(dir)).toBe(false)

      const dup = sampleReport()
      dup.plots[0]!.id = 'routers'
      await expect(writeReport(dir, dup)).rejects.toThrow(/id "routers" is used by a table and a plot/)
      expect(existsSync(dir)).toBe(false)

      const ragged = sampleReport()
      ragged.tables[0]!.rows.push(['only one'])
      expect(() => renderHtml(ragged)).toThrow(/row 3 has 1 cells, the table has 3 columns/)
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  })
})

describe('sim report: progress bar', () => {
  function fakes (isTTY: boolean, columns?: number) {
    let t = 1000
    const writes: string[] = []
    const stream = { isTTY, columns, write: (s: string) => { writes.push(s); return true } }
    return { writes, stream, now: () => t, advance: (ms: number) => { t += ms } }
  }

  it('on a TTY redraws one line at most every 100 ms, with ETA, and ends it on finish', () => {
    const f = fakes(true)
    const p = createProgress({ total: 200, label: 'sim', stream: f.stream, now: f.now })
    f.advance(2000)
    p.update(50)
    expect(f.writes).toEqual([`\rsim [${'█'.repeat(6)}${'░'.repeat(18)}]  25% 50/200 2.0s ETA 6.0s`])
    f.advance(50)
    p.update(60) // too soon: no redraw
    expect(f.writes).toHaveLength(1)
    f.advance(50)
    p.update(100)
    expect(f.writes[1]).toBe(`\rsim [${'█'.repeat(12)}${'░'.repeat(12)}]  50% 100/200 2.1s ETA 2.1s`)
    f.advance(1900)
    p.update(200)
    p.finish()
    expect(f.writes.at(-1)).toBe(`\rsim [${'█'.repeat(24)}] 100% 200/200 4.0s${' '.repeat(9)}\n`) // padded over the longer ETA line
    p.finish()
    p.update(10)
    expect(f.writes.at(-1)!.endsWith('\n')).toBe(true)
    expect(f.writes.join('').split('\n')).toHaveLength(2)
  })

  it('on a TTY cuts the line to the terminal width', () => {
    const f = fakes(true, 20)
    const p = createProgress({ total: 10, label: 'a-long-label', stream: f.stream, now: f.now })
    p.update(1)
    expect(f.writes[0]).toBe('\ra-long-label [██░░░')
  })

  it('off a TTY prints a plain line per tenth done, then a final line', () => {
    const f = fakes(false)
    const p = createProgress({ total: 1000, label: 'sweep', stream: f.stream, now: f.now })
    p.update(0)
    for (let done = 1; done <= 1000; done++) {
      f.advance(10)
      p.update(done)
    }
    p.finish()
    expect(f.writes).toHaveLength(10)
    expect(f.writes[0]).toBe('sweep: 10% (100/1000) 1.0s elapsed, ETA 9.0s\n')
    expect(f.writes[4]).toBe('sweep: 50% (500/1000) 5.0s elapsed, ETA 5.0s\n')
    expect(f.writes[8]).toBe('sweep: 90% (900/1000) 9.0s elapsed, ETA 1.0s\n')
    expect(f.writes[9]).toBe('sweep: done, 1000/1000 in 10s\n')
    expect(f.writes.every(w => !w.includes('\r'))).toBe(true)
  })

  it('reports where a run stopped, and refuses stdout and a bad total', () => {
    const f = fakes(false)
    const p = createProgress({ total: 10, label: 'x', stream: f.stream, now: f.now })
    f.advance(65_000)
    p.update(3)
    p.finish()
    expect(f.writes).toEqual(['x: 30% (3/10) 1m05s elapsed, ETA 2m32s\n', 'x: stopped at 30% (3/10) after 1m05s\n'])
    expect(() => createProgress({ total: 1, label: 'x', stream: process.stdout })).toThrow(/stdout/)
    expect(() => createProgress({ total: NaN, label: 'x', stream: f.stream })).toThrow(RangeError)
  })
})
