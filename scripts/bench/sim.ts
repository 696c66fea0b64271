/**
 * The simulator's engine: events per second with 10^6 (quick: 10^5) pending events, in the
 * classic "hold" pattern (pop the earliest, schedule one a random delay later, so the queue stays
 * full), against a naive binary heap of one object per event, measured in the same run with the
 * same delays. Each side runs 3 alternating repeats; the medians are reported.
 */
import { mulberry32 } from '../../protocols/random.ts'
import { EventQueue } from '../../sim/event-queue.ts'
import type { Bench, BenchResult } from '../bench.ts'

interface Ev { time: number, seq: number, kind: number, a: number, b: number }

/** The baseline: the textbook heap of objects, same (time, seq) order. */
class ObjectHeap {
  readonly items: Ev[] = []
  #seq = 0
  push (time: number, kind: number, a: number, b: number): void {
    const e = { time, seq: this.#seq++, kind, a, b }
    const h = this.items
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!less(e, h[p]!)) break
      h[i] = h[p]!
      i = p
    }
    h[i] = e
  }

  pop (): Ev {
    const h = this.items
    const top = h[0]!
    const last = h.pop()!
    if (h.length > 0) {
      let i = 0
      for (;;) {
        let c = 2 * i + 1
        if (c >= h.length) break
        if (c + 1 < h.length && less(h[c + 1]!, h[c]!)) c++
        if (!less(h[c]!, last)) break
        h[i] = h[c]!
        i = c
      }
      h[i] = last
    }
    return top
  }
}

function less (x: Ev, y: Ev): boolean {
  return x.time < y.time || (x.time === y.time && x.seq < y.seq)
}

export const simBench: Bench = async ({ quick }) => {
  const pending = quick ? 100_000 : 1_000_000
  const holds = quick ? 1_000_000 : 5_000_000
  // Delays drawn once, shared by both sides: the comparison is the queue, not the PRNG.
  const rand = mulberry32(5)
  const delays = Float64Array.from({ length: 1 << 20 }, () => -Math.log(1 - rand()) * 50)
  const mask = delays.length - 1

  const typed = (): number => {
    const q = new EventQueue(pending)
    for (let i = 0; i < pending; i++) q.push(delays[i & mask]!, 1, i, 0)
    const started = performance.now()
    let check = 0
    for (let i = 0; i < holds; i++) {
      const t = q.pop()
      check += q.a
      q.push(t + delays[(i + pending) & mask]!, 1, q.a, 0)
    }
    const seconds = (performance.now() - started) / 1000
    if (check < 0) throw new Error('unreachable')
    return holds / seconds
  }
  const naive = (): number => {
    const q = new ObjectHeap()
    for (let i = 0; i < pending; i++) q.push(delays[i & mask]!, 1, i, 0)
    const started = performance.now()
    let check = 0
    for (let i = 0; i < holds; i++) {
      const e = q.pop()
      check += e.a
      q.push(e.time + delays[(i + pending) & mask]!, 1, e.a, 0)
    }
    const seconds = (performance.now() - started) / 1000
    if (check < 0) throw new Error('unreachable')
    return holds / seconds
  }
  const ours: number[] = []
  const theirs: number[] = []
  for (let r = 0; r < 3; r++) {
    ours.push(typed())
    theirs.push(naive())
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[1]!
  console.error(`sim: ${pending} pending events, ${holds} hold operations per repeat; typed-array heap ${ours.map(x => (x / 1e6).toFixed(2)).join(', ')} M/s, object heap ${theirs.map(x => (x / 1e6).toFixed(2)).join(', ')} M/s`)
  const result: BenchResult = { bench: 'sim', metric: `events-per-s-${pending}-pending`, value: median(ours), unit: 'events/s', baseline: 'object-heap', baselineValue: median(theirs), ratio: median(ours) / median(theirs) }
  return [result]
}
