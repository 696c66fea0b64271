/**
 * Runs a scenario's runs (one per policy, or per sweep point) on worker threads, one per core.
 * Each run is a pure function of its scenario and seed, and results are put back in plan order,
 * so the report is byte-identical to a single-threaded run.
 */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { RunRequest } from './run-worker.ts'
import { planRuns, reportRuns, runScenario, type RunHooks, type RunOutput, type ScenarioResult } from './run.ts'
import type { Scenario } from './scenario.ts'

export async function runScenarioParallel (scenario: Scenario, hooks: RunHooks = {}, cores = availableParallelism()): Promise<ScenarioResult> {
  const plan = planRuns(scenario)
  const workers = workersFor(plan.length, cores)
  if (workers <= 1) return runScenario(scenario, hooks)
  hooks.start?.(plan.length * scenario.tasks.count)
  const results: Array<RunOutput | undefined> = plan.map(() => undefined)
  const finished = plan.map(() => 0)
  let next = 0
  await Promise.all(Array.from({ length: workers }, async () => {
    const worker = new Worker(new URL('./run-worker.ts', import.meta.url))
    try {
      await new Promise<void>((resolve, reject) => {
        const give = (): void => {
          if (next >= plan.length) { worker.postMessage(null); return resolve() }
          const index = next++
          worker.postMessage({ index, ...plan[index]! } satisfies RunRequest)
        }
        worker.on('message', (m: { progress?: number, done?: number, finished?: number } & Partial<RunOutput>) => {
          if (m.progress !== undefined) finished[m.progress] = m.finished!
          if (m.done !== undefined) {
            finished[m.done] = scenario.tasks.count
            results[m.done] = { summary: m.summary!, metrics: m.metrics! }
            give()
          }
          hooks.progress?.(finished.reduce((s, x) => s + x, 0))
        })
        worker.on('error', reject)
        worker.on('exit', code => { if (next < plan.length || results.includes(undefined)) reject(new Error(`a simulation worker exited (code ${code}) before its runs were done`)) })
        give()
      })
    } finally {
      await worker.terminate()
    }
  }))
  return reportRuns(scenario, results as RunOutput[])
}

/** Never more workers than this many per core: each holds a whole simulated world in memory. */
const MAX_WORKERS_PER_CORE = 2

/**
 * How many workers to run `runs` similar runs on `cores` cores. One per core leaves cores idle at
 * the end when the runs do not divide evenly (5 runs on 2 cores: the fifth runs alone, 3 run
 * lengths in all); a few more workers than cores share the cores instead (3 workers: 2.5 run
 * lengths, all the CPU time divided by the cores). Modelled with runs of equal length and cores
 * shared fairly, the smallest count that finishes first wins.
 */
export function workersFor (runs: number, cores: number): number {
  cores = Math.max(1, cores)
  let best = Math.min(runs, cores)
  let bestTime = makespan(runs, best, cores)
  for (let w = best + 1; w <= Math.min(runs, MAX_WORKERS_PER_CORE * cores); w++) {
    const time = makespan(runs, w, cores)
    if (time < bestTime - 1e-9) { best = w; bestTime = time }
  }
  return best
}

/** Run lengths to finish `runs` equal runs in waves of `workers`, each wave sharing `cores` fairly. */
function makespan (runs: number, workers: number, cores: number): number {
  let time = 0
  for (let left = runs; left > 0; left -= workers) {
    const wave = Math.min(workers, left)
    time += Math.max(1, wave / cores)
  }
  return time
}
