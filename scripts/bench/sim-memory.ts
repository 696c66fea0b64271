/**
 * Child process of the sim bench: builds and runs one world of `nodes` nodes (scale-10k's
 * population shares, 200 tasks) and prints the memory it holds afterwards, after a full GC.
 * Run as: node --expose-gc scripts/bench/sim-memory.ts <nodes> <agents-per-node-share>
 */
import { loadScenario } from '../../sim/scenario.ts'
import { World } from '../../sim/world.ts'

const nodes = Number(process.argv[2])
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')
gc()
const before = process.memoryUsage()
const base = loadScenario('scale-10k', { nodes })
const scenario = { ...base, tasks: { ...base.tasks, count: 200 }, durationS: 120 }
const started = performance.now()
const world = new World({ scenario, policy: 'linucb' })
world.run()
const seconds = (performance.now() - started) / 1000
gc()
const after = process.memoryUsage()
// The world must still be alive when measured.
console.log(JSON.stringify({ nodes, agents: world.agents.length, seconds, heapBytes: after.heapUsed - before.heapUsed, externalBytes: (after.external + after.arrayBuffers) - (before.external + before.arrayBuffers), rssBytes: after.rss, finished: world.finished }))
