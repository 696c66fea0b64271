/**
 * The MQTT bridge's cost: request/response round trips per second through the bridge against a
 * raw MQTT 5 request/response loop on the same mosquitto (QoS 1, response topic + correlation
 * data, the same responder process answering both), and the latency of a subtask a second peer
 * routes to an MQTT agent. One line:
 *
 * {"bench":"mqtt","broker","p50Ms","p99Ms","bridgeMsgsPerS","rawMsgsPerS","ratio","pythonAgent",…}
 *
 * - raw: an MQTT.js requester keeps `CONCURRENCY` requests in flight to the responder.
 * - bridge: the bridge peer dispatches to the same responder, advertised as an MQTT agent, with
 *   the same concurrency: what a routed subtask costs once the bridge peer has it (agent host
 *   accounting, request encoding, attempt bookkeeping, reply parsing). A remote requester adds
 *   one libp2p RPC hop and meets the per-peer execution budget (50/s), so throughput is measured
 *   at the bridge; latency (p50/p99) is measured from a second peer routing whole subtasks.
 * - pythonAgent: "ok" when the Python example answered a subtask routed from the second peer.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { startPeer, type Peer } from '../../node/peer.ts'
import { startMqttBridge } from '../../node/services/mqtt-bridge.ts'
import { defaultAgentSpecs } from '../../node/agents/registry.ts'
import { connectRing, untilTables } from '../../node/cli/local-mesh.ts'
import { startSecuredMosquitto } from '../../test/helpers/mosquitto.ts'
import type { BenchOptions } from '../bench.ts'

const CONCURRENCY = 32
const USERS = { 'agentmesh-bridge': 'bench-bridge', bench: 'bench-agent', 'py-agent': 'bench-python' }

export async function * mqttBench ({ quick }: BenchOptions): AsyncIterable<Record<string, unknown>> {
  const rounds = quick ? 2000 : 10_000
  /** Alternations of the two loops: the machine's noise (raw runs vary ±30% here) averages out in the medians. */
  const alternations = quick ? 3 : 7
  const routed = quick ? 100 : 500
  const broker = await startSecuredMosquitto(USERS)
  const dirs: string[] = []
  const peers: Peer[] = []
  const children: ChildProcess[] = []
  try {
    const responder = spawn(process.execPath, ['scripts/bench/mqtt/responder.ts', broker.url, 'bench', USERS.bench], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(responder)
    await lineFrom(responder, /ready/)

    // Raw MQTT 5 request/response, QoS 1.
    const raw = await mqtt.connectAsync(broker.url, { protocolVersion: 5, username: 'agentmesh-bridge', password: USERS['agentmesh-bridge'], reconnectPeriod: 0 })
    // Both sides as the bridge runs: Nagle off, the reply awaited (not each PUBACK on its own).
    ;(raw.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
    const replyTopic = 'agentmesh/v1/local/agents/bench/raw/reply/raw'
    await raw.subscribeAsync(replyTopic, { qos: 1 })
    const waiting = new Map<string, () => void>()
    raw.on('message', (_t, _p, packet) => { const id = packet.properties?.correlationData?.toString(); if (id !== undefined) waiting.get(id)?.() })
    let seq = 0
    const rawCall = async (): Promise<void> => {
      const id = String(++seq)
      const done = new Promise<void>(resolve => waiting.set(id, () => { waiting.delete(id); resolve() }))
      const acked = raw.publishAsync('agentmesh/v1/local/agents/bench/raw/request', JSON.stringify({ attempt: id, input: { n: seq }, deadlineMs: 5000 }), {
        qos: 1, properties: { responseTopic: replyTopic, correlationData: Buffer.from(id), messageExpiryInterval: 5 }
      })
      await done
      await acked
    }
    await loop(500, CONCURRENCY, rawCall) // warm-up

    // Through the bridge: peer A hosts the bridge, peer B routes to it.
    const peer = async (agents = defaultAgentSpecs()): Promise<Peer> => {
      const dataDir = await mkdtemp(join(tmpdir(), 'agentmesh-bench-mqtt-'))
      dirs.push(dataDir)
      const p = await startPeer({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], agents })
      peers.push(p)
      return p
    }
    const a = await peer([])
    const b = await peer([])
    await connectRing([a, b])
    const bridge = await startMqttBridge(a, { url: broker.url, network: 'local', env: { AGENTMESH_MQTT_USERNAME: 'agentmesh-bridge', AGENTMESH_MQTT_PASSWORD: USERS['agentmesh-bridge'] } })
    const echo = `${a.peerId}/mqtt.bench.echo`
    await untilTables([a, b], () => b.capability.agents().some(v => v.body.agent === echo))
    let n = 0
    const bridgeCall = async (): Promise<void> => {
      const r = await a.rpc.execute(echo, { n: ++n }, 5000)
      if (!r.ok) throw new Error(`bridge call failed: ${r.error}`)
    }
    await loop(500, CONCURRENCY, bridgeCall)
    // Alternated, medians: neither loop gets the warmer (or quieter) machine.
    const rawRuns: number[] = []
    const bridgeRuns: number[] = []
    const cpu = { raw: 0, bridge: 0 }
    for (let r = 0; r < alternations; r++) {
      let c0 = process.cpuUsage()
      rawRuns.push(await loop(rounds, CONCURRENCY, rawCall))
      cpu.raw += cpuUs(c0)
      c0 = process.cpuUsage()
      bridgeRuns.push(await loop(rounds, CONCURRENCY, bridgeCall))
      cpu.bridge += cpuUs(c0)
    }
    await raw.endAsync()
    const rawMsgsPerS = median(rawRuns)
    const bridgeMsgsPerS = median(bridgeRuns)

    // Latency of whole subtasks routed from B (router, beacon, dispatch over libp2p, bridge, MQTT).
    await b.whenIndexed()
    const latencies: number[] = []
    for (let i = 0; i < routed; i++) {
      // Paced under the bridge peer's per-peer execution budget (50/s): a faster requester is refused by design.
      await new Promise(resolve => setTimeout(resolve, 25))
      const start = performance.now()
      const report = await b.tasks.submit({ subtasks: [{ id: 'echo', capability: { text: 'echo its input back', skills: ['echo'] }, input: { i } }] }).finished
      if (report.status !== 'done') throw new Error(`routed subtask ${i}: ${report.status} ${report.reason ?? ''}`)
      latencies.push(performance.now() - start)
    }
    latencies.sort((x, y) => x - y)

    // The Python example, routed to from B.
    let pythonAgent = 'not run: /usr/bin/python3 with paho-mqtt is missing'
    if (spawnSync('/usr/bin/python3', ['-c', 'import paho.mqtt'], { stdio: 'ignore' }).status === 0) {
      const py = spawn('/usr/bin/python3', ['examples/python-agent/agent.py', '--broker', `127.0.0.1:${broker.port}`, '--client', 'py-agent'], { env: { ...process.env, AGENTMESH_MQTT_PASSWORD: USERS['py-agent'] }, stdio: ['ignore', 'pipe', 'inherit'] })
      children.push(py)
      await lineFrom(py, /online/)
      const id = `${a.peerId}/mqtt.py-agent.stats`
      await untilTables([a, b], () => b.capability.agents().some(v => v.body.agent === id))
      await b.whenIndexed()
      const report = await b.tasks.submit({ subtasks: [{ id: 's', capability: { text: 'mean and median of numbers', skills: ['statistics'] }, input: { numbers: [1, 2, 3, 10] } }] }).finished
      const out = report.outputs.s as { mean?: number } | undefined
      pythonAgent = report.status === 'done' && out?.mean === 4 && report.trace.some(t => t.kind === 'dispatch' && t.agent === id) ? 'ok' : `failed: ${report.status} ${report.reason ?? JSON.stringify(report.outputs)}`
    }
    await bridge.stop()
    yield {
      bench: 'mqtt',
      broker: brokerVersion(),
      concurrency: CONCURRENCY,
      requests: rounds,
      rawRuns: rawRuns.map(Math.round),
      bridgeRuns: bridgeRuns.map(Math.round),
      rawMsgsPerS: Math.round(rawMsgsPerS),
      bridgeMsgsPerS: Math.round(bridgeMsgsPerS),
      ratio: +(bridgeMsgsPerS / rawMsgsPerS).toFixed(3),
      // CPU of the requesting process per round trip: the raw requester, or the bridge peer (which
      // also runs the agent host and the request bookkeeping). Broker and agent are the same in both.
      rawCpuUsPerMsg: Math.round(cpu.raw / (alternations * rounds)),
      bridgeCpuUsPerMsg: Math.round(cpu.bridge / (alternations * rounds)),
      routedSubtasks: routed,
      p50Ms: +quantile(latencies, 0.5).toFixed(2),
      p99Ms: +quantile(latencies, 0.99).toFixed(2),
      pythonAgent
    }
  } finally {
    for (const c of children) c.kill('SIGKILL')
    await Promise.all(peers.map(async p => { await p.stop() }))
    await broker.stop()
    await Promise.all(dirs.map(async d => { await rm(d, { recursive: true, force: true }) }))
  }
}

/** Runs `total` calls with `concurrency` in flight; calls per second. */
async function loop (total: number, concurrency: number, call: () => Promise<void>): Promise<number> {
  let started = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (started < total) {
      started++
      await call()
    }
  }))
  return total / ((performance.now() - t0) / 1000)
}

function cpuUs (since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since)
  return d.user + d.system
}

function median (xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
}

function quantile (sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
}

function brokerVersion (): string {
  const out = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' })
  return (out.stdout ?? '').split('\n')[0]?.trim() || 'mosquitto'
}

async function lineFrom (child: ChildProcess, re: RegExp): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let text = ''
    child.stdout!.on('data', (d: Buffer) => { text += d.toString(); if (re.test(text)) resolve() })
    child.once('exit', code => { reject(new Error(`process exited (${code}) before printing ${re}`)) })
  })
}
