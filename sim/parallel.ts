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

export async function runScenarioParallel (scenario: Scenario, hooks: RunHooks = {}, threads = availableParallelism()): Promise<ScenarioResult> {
  const plan = planRuns(scenario)
  const workers = Math.min(threads, plan.length)
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
