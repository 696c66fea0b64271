/**
 * The simulator:
 * - the engine (a calendar queue over typed arrays): events per second with 10^6 (quick: 10^5) pending events, in the classic "hold"
 *   pattern (pop the earliest, schedule one a random delay later, so the queue stays full),
 *   against a naive binary heap of one object per event, measured in the same run with the same
 *   delays; 3 alternating repeats each, medians reported;
 * - `scale-10k` end to end (10k nodes, 1k tasks, every policy, worker threads as `agentmesh sim`
 *   runs it) against the 60 s goal, and one policy's run alone;
 * - memory per simulated node: worlds of scale-10k's shape at two sizes, each in its own process
 *   after a full GC (heap + native buffers); the slope gives bytes per node and, with the
 *   intercept, the largest node count that fits in 8 GiB (an extrapolation, labelled so).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { mulberry32 } from '../../protocols/random.ts'
import { loadScenario } from '../../sim/scenario.ts'
import { runOnce } from '../../sim/run.ts'
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
  console.error(`sim: ${pending} pending events, ${holds} hold operations per repeat; calendar queue ${ours.map(x => (x / 1e6).toFixed(2)).join(', ')} M/s, object heap ${theirs.map(x => (x / 1e6).toFixed(2)).join(', ')} M/s`)
  const results: BenchResult[] = [{ bench: 'sim', metric: `events-per-s-${pending}-pending`, value: median(ours), unit: 'events/s', baseline: 'object-heap', baselineValue: median(theirs), ratio: median(ours) / median(theirs) }]

  const root = fileURLToPath(new URL('../..', import.meta.url))
  const nodes = quick ? 2000 : 10_000
  // The whole built-in scenario, as a user runs it.
  const out = mkdtempSync(join(tmpdir(), 'agentmesh-bench-sim-'))
  try {
    const t = performance.now()
    execFileSync(process.execPath, [join(root, 'bin/agentmesh.js'), 'sim', 'scale-10k', '--nodes', String(nodes), '--out', out, '--json'], { stdio: ['ignore', 'ignore', 'inherit'] })
    const wall = (performance.now() - t) / 1000
    results.push({ bench: 'sim', metric: `scale-10k-wall-${nodes}-nodes-all-policies`, value: wall, unit: 's', baseline: 'goal', baselineValue: 60, ratio: wall / 60 })
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
  const one = performance.now()
  const run = runOnce(loadScenario('scale-10k', { nodes }), 'linucb')
  const oneWall = (performance.now() - one) / 1000
  console.error(`sim: scale-10k, one policy: ${oneWall.toFixed(1)} s, ${run.summary.events} events, ${run.summary.tasks} tasks`)
  results.push({ bench: 'sim', metric: `scale-10k-wall-${nodes}-nodes-one-policy`, value: oneWall, unit: 's', baseline: 'goal', baselineValue: 60, ratio: oneWall / 60 })

  // Memory: two sizes, each in a fresh process.
  const sizes = quick ? [2000, 8000] : [10_000, 40_000]
  const probe = (n: number): { heapBytes: number, externalBytes: number } => JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--max-old-space-size=16384', join(root, 'scripts/bench/sim-memory.ts'), String(n)], { encoding: 'utf8' })) as { heapBytes: number, externalBytes: number }
  const [small, large] = sizes.map(n => { const m = probe(n); return m.heapBytes + m.externalBytes })
  const perNode = (large! - small!) / (sizes[1]! - sizes[0]!)
  const fixed = small! - perNode * sizes[0]!
  const fits = Math.floor((8 * 2 ** 30 - Math.max(0, fixed)) / perNode)
  console.error(`sim: memory ${(small! / 2 ** 20).toFixed(0)} MiB at ${sizes[0]} nodes, ${(large! / 2 ** 20).toFixed(0)} MiB at ${sizes[1]} (scale-10k's shape: 20% of nodes host an agent, 20 requesters each holding every VCV); ${perNode.toFixed(0)} bytes per added node; 8 GiB fits about ${fits} nodes (extrapolated)`)
  results.push({ bench: 'sim', metric: 'memory-per-node', value: perNode, unit: 'bytes', baseline: `per-node-at-${sizes[0]}`, baselineValue: small! / sizes[0]!, ratio: perNode / (small! / sizes[0]!) })
  results.push({ bench: 'sim', metric: 'nodes-in-8GiB-extrapolated', value: fits, unit: 'nodes', baseline: 'goal-10k', baselineValue: 10_000, ratio: fits / 10_000 })
  return results
}
