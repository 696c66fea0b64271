/**
 * A progress bar with ETA for long simulator runs, on stderr (stdout carries `--json`). On a
 * terminal it redraws one line with "\r" at most 10 times a second; elsewhere (CI logs, pipes)
 * it prints a plain line each time another tenth is done, so a log gets about ten lines. The
 * clock is injected so tests can drive it.
 */

export interface ProgressStream {
  write (chunk: string): unknown
  isTTY?: boolean
  /** Terminal width; the line is cut to fit so "\r" can still return to its start. */
  columns?: number
}

export interface ProgressOptions {
  total: number
  label: string
  stream?: ProgressStream
  /** Milliseconds, monotonic. */
  now?: () => number
}

export interface Progress {
  /** Units done so far (clamped to 0..total). */
  update (done: number): void
  /** Draws the final state ("done", or where it stopped if short of total) and ends the line; later calls do nothing. */
  finish (): void
}

const REDRAW_MS = 100
const BAR_WIDTH = 24

/** "3.2s", "42s", "4m05s", "1h02m": short, and fixed by the milliseconds alone. */
export function formatDuration (ms: number): string {
  const s = Math.max(0, ms) / 1000
  if (s < 9.95) return `${s.toFixed(1)}s`
  const r = Math.round(s)
  if (r < 60) return `${r}s`
  if (r < 3600) return `${Math.floor(r / 60)}m${String(r % 60).padStart(2, '0')}s`
  return `${Math.floor(r / 3600)}h${String(Math.floor((r % 3600) / 60)).padStart(2, '0')}m`
}

export function createProgress ({ total, label, stream = process.stderr, now = () => performance.now() }: ProgressOptions): Progress {
  if (!(Number.isFinite(total) && total >= 0)) throw new RangeError(`progress total must be a finite number >= 0, got ${total}`)
  if (stream === process.stdout) throw new Error('progress must not write to stdout (it carries --json output); use process.stderr')
  const tty = stream.isTTY === true
  const start = now()
  let done = 0
  let lastDraw = -Infinity
  let lastTenth = 0
  let lastLength = 0
  let finished = false

  const fraction = (): number => total === 0 ? 1 : done / total
  const eta = (elapsed: number): string => done === 0 ? '?' : formatDuration(elapsed * (total - done) / done)

  function drawTty (final: boolean): void {
    const f = fraction()
    const filled = Math.floor(f * BAR_WIDTH)
    const elapsed = now() - start
    const tail = final ? formatDuration(elapsed) : `${formatDuration(elapsed)} ETA ${eta(elapsed)}`
    let line = `${label} [${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}] ${String(Math.floor(f * 100)).padStart(3)}% ${done}/${total} ${tail}`
    if (typeof stream.columns === 'number' && stream.columns > 1) line = [...line].slice(0, stream.columns - 1).join('')
    // Spaces wipe what a longer previous line left behind.
    stream.write(`\r${line.padEnd(lastLength)}${final ? '\n' : ''}`)
    lastLength = line.length
  }

  return {
    update (value: number): void {
      if (finished) return
      done = Math.min(total, Math.max(0, value))
      if (tty) {
        const t = now()
        if (t - lastDraw < REDRAW_MS) return
        lastDraw = t
        drawTty(false)
        return
      }
      const tenth = total === 0 ? 10 : Math.floor(done * 10 / total)
      if (tenth <= lastTenth || tenth >= 10) return // 100 % is finish()'s line
      lastTenth = tenth
      const elapsed = now() - start
      stream.write(`${label}: ${Math.floor(fraction() * 100)}% (${done}/${total}) ${formatDuration(elapsed)} elapsed, ETA ${eta(elapsed)}\n`)
    },
    finish (): void {
      if (finished) return
      finished = true
      if (tty) drawTty(true)
      else if (done === total) stream.write(`${label}: done, ${total}/${total} in ${formatDuration(now() - start)}\n`)
      else stream.write(`${label}: stopped at ${Math.floor(fraction() * 100)}% (${done}/${total}) after ${formatDuration(now() - start)}\n`)
    }
  }
}
