/** A worker thread that runs simulation runs handed to it (sim/parallel.ts), one at a time. */
import { parentPort } from 'node:worker_threads'
import { runOnce } from './run.ts'
import type { PolicyName } from '../protocols/routing/index.ts'
import type { Scenario } from './scenario.ts'

export interface RunRequest { index: number, scenario: Scenario, policy: PolicyName, faulty?: number }

parentPort!.on('message', (req: RunRequest | null) => {
  if (req === null) return void parentPort!.close()
  let last = 0
  const out = runOnce(req.scenario, req.policy, finished => {
    if (finished - last >= 10) { last = finished; parentPort!.postMessage({ progress: req.index, finished }) }
  }, req.faulty)
  parentPort!.postMessage({ done: req.index, summary: out.summary, metrics: { tasks: out.metrics.tasks, regret: out.metrics.regret, rules: out.metrics.rules } })
})
