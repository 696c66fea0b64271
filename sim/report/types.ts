/** What the simulator hands the report writer: plain data, no behaviour, so the same run gives the same bytes. */

/** One curve: points are drawn in the order given; NaN/±Infinity points are skipped in plots. */
export interface Series { name: string, points: Array<[number, number]> } // x, y

export interface Plot {
  /** File name stem, [a-z0-9][a-z0-9-]*: becomes `<id>.svg` and `<id>.csv`. */
  id: string
  title: string
  /** `step` draws a staircase (for CDFs); `scatter-line` adds a dot at every point (meant for sweeps of a few dozen points). */
  kind: 'line' | 'step' | 'scatter-line'
  xLabel: string
  yLabel: string
  series: Series[]
  yRange?: [number, number]
  xRange?: [number, number]
  logX?: boolean
  /** Vertical lines, e.g. `{ x: 300, label: 'shock at t=300s' }`. */
  markers?: Array<{ x: number, label: string }>
}

export interface Table { id: string, title: string, columns: string[], rows: Array<Array<string | number | null>> }

export interface SimReport {
  /** e.g. "quickstart — seed 1" */
  title: string
  /** Flat summary metrics; written with keys sorted. */
  summary: Record<string, number | string | boolean | null>
  /** e.g. the per-policy and per-aggregation comparisons. */
  tables: Table[]
  plots: Plot[]
  /** Paragraphs: what is and is not modelled, tolerances. */
  notes: string[]
}
