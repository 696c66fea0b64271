/** `agentmesh sim`: runs a simulation scenario and writes its report. */
import { resolve } from 'node:path'
import { createProgress, writeReport } from '../../sim/report/index.ts'
import { runScenarioParallel } from '../../sim/parallel.ts'
import { isSimulationFailure, reproduceCommand } from '../../sim/failure.ts'
import { builtInScenarios, loadScenario, ScenarioError, TEST_BUGS, type ScenarioOverrides, type TestBug } from '../../sim/scenario.ts'
import { crossCheck, crossCheckProblem, CROSS_CHECK_MAX_NODES } from '../../sim/crosscheck.ts'
import { integer, parse, UsageError } from './args.ts'

export const simHelp = `agentmesh sim <scenario.yaml | built-in name> [--nodes N] [--seed S] [--seeds K] [--out DIR] [--json] [--cross-check [--time-scale X]]

Runs a network simulation: the same protocol state machines a real peer runs (capability
tables, routing core and policies, beacon rounds, task execution, consensus), driven in virtual
time over a modelled network with modelled agents and the scenario's faults. Each routing policy
the scenario lists runs on the same seed and task stream, side by side.

Built-in scenarios: ${builtInScenarios().join(', ')} (random: size, topology, loss, agents,
tasks and faults drawn from the seed)

  --nodes N   override the scenario's node count
  --seed S    override the scenario's seed (same seed, same bytes out)
  --seeds K   run seeds S, S+1, …, S+K-1 (S from --seed, default 1) without writing reports,
              and stop at the first that fails, with its reproduce command (exit 3); e.g.
              agentmesh sim random --seeds 200
  --out DIR   where the report goes (default: sim-results/<scenario>-<nodes>n-seed<S>)
  --json      print the summary metrics as one JSON object on stdout
  --cross-check  also run the scenario on real peers (libp2p over TCP on 127.0.0.1, at most
              ${CROSS_CHECK_MAX_NODES} nodes, agent faults only) with the same agents and tasks, and add a
              table comparing the two runs with the tolerance of each metric; exit 1 if any
              metric is outside it. The real run is not deterministic.
  --time-scale X  real seconds per simulated second in the cross-check (default 0.05)
  --inject-bug B  test only: run with a deliberate protocol bug (${TEST_BUGS.join(', ')}), to
              see the simulator stop on it

A run that breaks an invariant of a protocol machine, violates consensus safety (honest members
committing different values with less than a third of Byzantine power) or throws stops there:
the error, its seed, policy and virtual time and the command that reproduces it go to stderr,
and the exit code is 3.

Writes summary.json, a CSV per table and per plot, SVG plots and report.html to the output
directory. Progress goes to stderr.`

export async function simCommand (argv: string[]): Promise<number> {
  const { values, positionals } = parse('sim', argv, {
    nodes: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean' },
    'cross-check': { type: 'boolean' },
    'time-scale': { type: 'string' },
    'inject-bug': { type: 'string' },
    seeds: { type: 'string' }
  }, true)
  const name = positionals[0]
  if (name === undefined || positionals.length > 1) throw new UsageError(`sim: give one scenario file or built-in name, e.g. agentmesh sim quickstart (built-in: ${builtInScenarios().join(', ')})`)
  const nodes = values.nodes === undefined ? undefined : integer('sim', 'nodes', values.nodes, 100, 4, 1_000_000)
  const seed = values.seed === undefined ? undefined : integer('sim', 'seed', values.seed, 1, 0, 2 ** 32 - 1)
  const injectBug = values['inject-bug']
  if (injectBug !== undefined && !(TEST_BUGS as readonly string[]).includes(injectBug)) throw new UsageError(`sim: --inject-bug must be one of ${TEST_BUGS.join(', ')}, not "${injectBug}"`)
  let scenario
  try {
    scenario = loadScenario(name, { ...(nodes !== undefined ? { nodes } : {}), ...(seed !== undefined ? { seed } : {}), ...(injectBug !== undefined ? { injectBug: injectBug as TestBug } : {}) })
  } catch (err) {
    if (err instanceof ScenarioError) throw new UsageError(`sim: ${err.message}`)
    throw err
  }
  const timeScale = values['time-scale'] === undefined ? 0.05 : Number(values['time-scale'])
  if (!(timeScale > 0 && timeScale <= 10)) throw new UsageError(`sim: --time-scale must be a number of real seconds per simulated second, above 0 and at most 10, not "${values['time-scale']}"`)
  if (values['time-scale'] !== undefined && values['cross-check'] !== true) throw new UsageError('sim: --time-scale only applies with --cross-check')
  if (values.seeds !== undefined) {
    if (values['cross-check'] === true || values.out !== undefined) throw new UsageError('sim: --seeds runs many seeds without reports: it takes neither --cross-check nor --out')
    const count = integer('sim', 'seeds', values.seeds, 1, 1, 1_000_000)
    return await runSeeds(name, count, { ...(nodes !== undefined ? { nodes } : {}), ...(injectBug !== undefined ? { injectBug: injectBug as TestBug } : {}) }, seed ?? scenario.seed, values.json === true)
  }
  const problem = values['cross-check'] === true ? crossCheckProblem(scenario) : undefined
  if (problem !== undefined) throw new UsageError(`sim --cross-check: ${problem}`)
  const out = resolve(values.out ?? `sim-results/${scenario.name}-${scenario.nodes}n-seed${scenario.seed}`)
  let progress: ReturnType<typeof createProgress> | undefined
  const started = performance.now()
  let result
  try {
    result = await runScenarioParallel(scenario, {
      start: total => { progress = createProgress({ total, label: `sim ${scenario.name}` }) },
      progress: done => progress?.update(done)
    })
  } catch (err) {
    if (!isSimulationFailure(err)) throw err
    progress?.finish()
    console.error(`\n${err.message}\n  reproduce: ${reproduceCommand(name, scenario)}`)
    return 3
  }
  progress?.finish()
  let agrees = true
  if (values['cross-check'] === true) {
    console.error(`sim ${scenario.name}: cross-check on ${scenario.nodes} real peers (${scenario.policies[0]}, time × ${timeScale})…`)
    const check = await crossCheck(scenario, scenario.policies[0], timeScale)
    agrees = check.agrees
    result.report.tables.push(check.table)
    result.report.summary['crossCheck.agrees'] = check.agrees
    result.report.summary['crossCheck.realWallMs'] = Math.round(check.real.wallMs)
    result.report.notes.push('Cross-check: the same population and task stream on real peers (libp2p over TCP on 127.0.0.1, real Ed25519, the node\'s router, task runner, consensus service and canaries), time compressed by the time scale. Rates agree when their difference is within three standard errors of a difference of two proportions (plus 0.02); latency is not compared (loopback links, scaled time). The real run is not deterministic.')
  }
  const files = await writeReport(out, result.report)
  const seconds = (performance.now() - started) / 1000
  const heapMiB = process.memoryUsage().heapUsed / 2 ** 20
  console.error(`sim ${scenario.name}: ${result.runs.length} run${result.runs.length === 1 ? '' : 's'} in ${seconds.toFixed(1)} s wall, ${result.runs.reduce((s, r) => s + r.summary.events, 0)} events; heap ${heapMiB.toFixed(0)} MiB; report in ${out} (${files.length} files)`)
  if (values.json === true) {
    console.log(JSON.stringify(result.report.summary))
  } else {
    const table = result.report.tables[0]!
    console.log(`${result.report.title}\n`)
    console.log(table.columns.join('\t'))
    for (const row of table.rows) console.log(row.map(x => x ?? '-').join('\t'))
    const check = result.report.tables.find(t => t.id === 'cross-check')
    if (check !== undefined) {
      console.log(`\n${check.title}\n${check.columns.join('\t')}`)
      for (const row of check.rows) console.log(row.map(x => x ?? '-').join('\t'))
    }
    console.log(`\nsafety violations: ${String(result.report.summary.safetyViolations)}\nreport: ${out}/report.html`)
  }
  return agrees ? 0 : 1
}

/** Seeds `first`, `first + 1`, … of one scenario, no reports; the first failure stops with its command. */
async function runSeeds (name: string, count: number, overrides: Omit<ScenarioOverrides, 'seed'>, first: number, json: boolean): Promise<number> {
  const started = performance.now()
  for (let k = 0; k < count; k++) {
    const scenario = loadScenario(name, { ...overrides, seed: first + k })
    try {
      await runScenarioParallel(scenario)
    } catch (err) {
      if (!isSimulationFailure(err)) throw err
      console.error(`\nseed ${scenario.seed} failed after ${k} passed\n${err.message}\n  reproduce: ${reproduceCommand(name, scenario)}`)
      if (json) console.log(JSON.stringify({ scenario: scenario.name, seeds: k + 1, passed: k, failed: scenario.seed }))
      return 3
    }
    console.error(`sim ${scenario.name}: seed ${scenario.seed} passed (${k + 1}/${count}, ${scenario.nodes} nodes, ${((performance.now() - started) / 1000).toFixed(1)} s)`)
  }
  if (json) console.log(JSON.stringify({ scenario: name, seeds: count, passed: count, failed: null }))
  else console.log(`${count} seed${count === 1 ? '' : 's'} passed (${first}..${first + count - 1})`)
  return 0
}
