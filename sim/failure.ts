/**
 * A simulated run that went wrong stops there and says so (TigerBeetle's VOPR does the same): a
 * broken invariant inside a protocol machine (`protocols/assert.ts`), a safety violation the
 * world saw, or any other exception. The message names the scenario, seed, policy and virtual
 * time; `agentmesh sim` adds the command that reproduces it and exits non-zero. Runs may fail in
 * worker threads, which pass on only an error's message: it carries everything.
 */
import type { Scenario } from './scenario.ts'

/** Every SimulationFailure's message starts with this (what crosses a worker thread is the message). */
const FAILURE_PREFIX = 'simulation stopped: '

export class SimulationFailure extends Error {
  constructor (why: string, scenario: Scenario, policy: string, virtualMs: number) {
    super(`${FAILURE_PREFIX}${why}\n  scenario ${scenario.name}, seed ${scenario.seed}, ${scenario.nodes} nodes, policy ${policy}, at virtual time ${(virtualMs / 1000).toFixed(3)} s${scenario.injectBug !== undefined ? `, injected bug ${scenario.injectBug}` : ''}`)
    this.name = 'SimulationFailure'
  }
}

export function isSimulationFailure (err: unknown): err is Error {
  return err instanceof Error && err.message.startsWith(FAILURE_PREFIX)
}

/** The command that runs the same simulation again: same scenario, seed, size and injected bug. */
export function reproduceCommand (scenarioArg: string, scenario: Scenario): string {
  const arg = /^[\w./-]+$/.test(scenarioArg) ? scenarioArg : `'${scenarioArg.replaceAll("'", "'\\''")}'`
  return `npx agentmesh sim ${arg} --seed ${scenario.seed} --nodes ${scenario.nodes}${scenario.injectBug !== undefined ? ` --inject-bug ${scenario.injectBug}` : ''}`
}
