/**
 * `agentmesh lab`: the open network proven on one machine. Builds network namespaces (seeds and a
 * STUN server on an "internet" bridge, LANs behind NAT routers), runs real agentmesh processes in
 * them, runs the scenario (node/lab/scenario.ts), prints the result and removes every namespace,
 * also on Ctrl-C or error. Linux and root only.
 */
import { mkdirSync } from 'node:fs'
import { labSupport, sweepStale } from '../lab/topology.ts'
import { runLabScenario, type LabResult } from '../lab/scenario.ts'
import { integer, parse, UsageError } from './args.ts'

export const labHelp = `agentmesh lab [--seeds S] [--lans K] [--peers-per-lan P] [--delay MS] [--loss PCT] [--logs DIR] [--json]

Proves the open network on this machine, with no internet (Linux, root; needs ip, nft and
coturn's turnserver). Builds network namespaces: an "internet" bridge with S public seed nodes
(default 2) and a STUN server, and K home LANs (default 3), each behind its own NAT router, with P
peers each (default 3), all real agentmesh processes. Then: convergence, a task from LAN 1 to an
agent only LAN 2 hosts, a trusted subtask committed across LANs, work between every pair of LANs
(relayed, then hole punched over WebRTC), and a killed seed. Prints progress and the result, and
deletes every namespace it made. --delay needs tc netem in the kernel; --loss does not.
--logs DIR keeps each process's output in DIR/<name>.log (with DEBUG=libp2p:… also libp2p's).
With --json the last line is one JSON object with the measurements.`

export async function labCommand (argv: string[]): Promise<number> {
  const { values } = parse('lab', argv, {
    seeds: { type: 'string' },
    lans: { type: 'string' },
    'peers-per-lan': { type: 'string' },
    delay: { type: 'string' },
    loss: { type: 'string' },
    logs: { type: 'string' },
    json: { type: 'boolean' }
  })
  const seeds = integer('lab', 'seeds', values.seeds, 2, 1, 20)
  const lans = integer('lab', 'lans', values.lans, 3, 1, 20)
  const peersPerLan = integer('lab', 'peers-per-lan', values['peers-per-lan'], 3, 1, 20)
  const delayMs = integer('lab', 'delay', values.delay, 0, 0, 10_000)
  const lossPct = values.loss === undefined ? 0 : Number(values.loss)
  if (!(lossPct >= 0 && lossPct <= 50)) throw new UsageError(`lab: --loss must be a percentage from 0 to 50, not "${values.loss}"`)
  const json = values.json === true
  if (values.logs !== undefined) mkdirSync(values.logs, { recursive: true })
  const support = await labSupport()
  if (!support.ok) {
    console.error(`agentmesh lab: this machine cannot build the lab: ${support.reason}`)
    return 2
  }
  const swept = await sweepStale()
  const say = (line: string): void => { if (json) console.log(JSON.stringify({ event: 'progress', at: new Date().toISOString(), text: line })); else console.log(line) }
  if (swept.length > 0) say(`removed ${swept.length} namespaces an earlier lab left behind (its process had died)`)
  const result = await runLabScenario({
    seeds, lans, peersPerLan,
    ...(delayMs > 0 ? { delayMs } : {}),
    ...(lossPct > 0 ? { lossPct } : {}),
    ...(values.logs !== undefined ? { logDir: values.logs } : {}),
    say
  })
  if (json) console.log(JSON.stringify(result))
  else printResult(result)
  return passed(result) ? 0 : 1
}

/** The issue's bar for the lab: converged, both tasks and the commit ok, the seed's death survived, nothing left behind. */
export function passed (r: LabResult): boolean {
  return r.converged && r.crossNatTask.ok && r.trustedCommit.ok && r.seedKilled.stillConverged && r.seedKilled.taskOk && r.namespacesLeft === 0 && r.errors.length === 0
}

function printResult (r: LabResult): void {
  const yes = (b: boolean): string => b ? 'yes' : 'NO'
  const ms = (x: number | null): string => x === null ? '-' : `${x} ms`
  console.log(`\nlab: ${r.seeds} seeds, ${r.lans} LANs, ${r.peers} peers behind NAT (${(r.wallMs / 1000).toFixed(0)} s)`)
  console.log(`  converged          ${yes(r.converged)}  ${ms(r.convergedMs)} from the first dial`)
  console.log(`  reachability       ${Object.entries(r.reachability).map(([k, n]) => `${n} ${k}`).join(', ')}`)
  console.log(`  cross-NAT task     ${yes(r.crossNatTask.ok)}  ${ms(r.crossNatTask.ms)}${r.crossNatTask.reason !== undefined ? `  (${r.crossNatTask.reason})` : ''}`)
  console.log(`  trusted commit     ${yes(r.trustedCommit.ok)}  committee ${r.trustedCommit.committee ?? '-'} across ${r.trustedCommit.lans} LANs${r.trustedCommit.reason !== undefined ? `  (${r.trustedCommit.reason})` : ''}`)
  console.log(`  NAT'd pairs        ${r.natPairs.direct} direct, ${r.natPairs.relayed} relayed, ${r.natPairs.none} unconnected${r.natPairs.directShare !== null ? ` (${Math.round(r.natPairs.directShare * 100)}% direct)` : ''}; upgrades ${r.upgrades.ok} ok, ${r.upgrades.failed} failed`)
  if (r.natPairs.notDirect.length > 0) console.log(`  not direct         ${r.natPairs.notDirect.join(', ')}`)
  console.log(`  task latency       direct median ${ms(r.latency.direct.medianMs)} (${r.latency.direct.tasks} tasks), relayed median ${ms(r.latency.relayed.medianMs)} (${r.latency.relayed.tasks} tasks)`)
  console.log(`  seed killed        still converged ${yes(r.seedKilled.stillConverged)} ${ms(r.seedKilled.convergedMs)}, task ${yes(r.seedKilled.taskOk)}${r.seedKilled.reason !== undefined ? `  (${r.seedKilled.reason})` : ''}`)
  console.log(`  namespaces left    ${r.namespacesLeft}`)
  for (const e of r.errors) console.log(`  error              ${e}`)
}
