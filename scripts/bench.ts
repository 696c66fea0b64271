/**
 * `npm run bench -- <name> [--json]`: runs one benchmark. Each result compares a measurement with
 * a baseline measured in the same run, so the ratio survives a noisy machine. With --json every
 * result is one line: {"bench","metric","value","unit","baseline","baselineValue","ratio"}.
 * A bench with its own line shape (adversary: one line per attack) yields its lines as they come.
 */
import { parseArgs } from 'node:util'

export interface BenchResult {
  bench: string
  metric: string
  value: number
  unit: string
  baseline: string
  baselineValue: number
  ratio: number
}

export interface BenchOptions { quick: boolean, /** adversary: the attacks to run (comma-separated) */ attack?: string }
export type Bench = (options: BenchOptions) => Promise<BenchResult[]>
/** A bench whose results are not ratios: one JSON object per line, printed as soon as it is ready. */
export type LineBench = (options: BenchOptions) => AsyncIterable<Record<string, unknown>>

const benches: Record<string, { about: string } & ({ load: () => Promise<Bench> } | { lines: () => Promise<LineBench> })> = {
  gossip: { about: 'CPU per VCV delivery, agentmesh gossip settings vs gossipsub defaults', load: async () => (await import('./bench/gossip.ts')).gossipBench },
  bandit: { about: 'LinUCB decision + update vs a bare typed-array kernel (and ml-matrix)', load: async () => (await import('./bench/bandit.ts')).banditBench },
  sim: { about: 'simulator engine: events/s with 10^6 pending events vs a naive object heap', load: async () => (await import('./bench/sim.ts')).simBench },
  route: { about: 'routing among 100k VCVs: HNSW search vs a brute-force scan, p50/p99 and recall', load: async () => (await import('./bench/route.ts')).routeBench },
  metrics: { about: 'GET /metrics p50/p99 with 100k VCVs in the table vs only the own agents (--quick: 10k)', load: async () => (await import('./bench/metrics.ts')).metricsBench },
  consensus: { about: 'consensus commits/s with real Ed25519, committees of 4 and 16, vs the Ed25519 verify ceiling', load: async () => (await import('./bench/consensus.ts')).consensusBench },
  'id-work': { about: 'proof of work on peer ids: ms per identity at 8/12/16 bits, and the check', lines: async () => (await import('./bench/id-work.ts')).idWorkBench },
  mqtt: { about: 'MQTT bridge: request/response through the bridge vs raw MQTT 5 on the same mosquitto; routed latency; the Python example', lines: async () => (await import('./bench/mqtt.ts')).mqttBench },
  faults: { about: 'kill -9, torn store files and SIGTERM under load on 5 real peers: tasks and certificates lost, said or silent (--quick)', lines: async () => (await import('./bench/faults.ts')).faultsBench },
  coordination: { about: 'simulator table: forgetting after a shock (vs Symphony-Coord), 0-6 colluding liars and sleepers of 7 and calibrated agents (vs CP-WBFT), CP-WBFT over topologies (--quick)', lines: async () => (await import('./bench/coordination.ts')).coordinationBench },
  adversary: { about: '8 honest peer processes vs 1 rogue, one attack at a time (--attack NAME[,NAME])', lines: async () => (await import('./bench/adversary/adversary.ts')).adversaryBench }
}

const { values, positionals } = parseArgs({ options: { json: { type: 'boolean' }, quick: { type: 'boolean' }, attack: { type: 'string' } }, allowPositionals: true })
const name = positionals[0]
const bench = name !== undefined ? benches[name] : undefined
if (bench === undefined) {
  console.error(`${name === undefined ? 'say which benchmark to run' : `no benchmark "${name}"`}: npm run bench -- <name> [--json] [--quick]\n` +
    Object.entries(benches).map(([n, b]) => `  ${n.padEnd(10)} ${b.about}`).join('\n'))
  process.exit(2)
}
const options: BenchOptions = { quick: values.quick === true, ...(values.attack !== undefined ? { attack: values.attack } : {}) }
if ('lines' in bench) {
  for await (const line of (await bench.lines())(options)) {
    console.log(values.json === true ? JSON.stringify(line) : Object.entries(line).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' '))
  }
  process.exit(0)
}
const results = await (await bench.load())(options)
for (const r of results) {
  console.log(values.json === true
    ? JSON.stringify(r)
    : `${r.bench} ${r.metric}: ${fmt(r.value)} ${r.unit} vs ${r.baseline} ${fmt(r.baselineValue)} ${r.unit} (ratio ${r.ratio.toFixed(3)})`)
}
process.exit(0)

function fmt (n: number): string { return n >= 100 ? n.toFixed(0) : n.toPrecision(3) }
