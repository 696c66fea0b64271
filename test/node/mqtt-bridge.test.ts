// The MQTT bridge end to end: real mosquitto with passwords and the documented ACL, real peers
// over TCP on 127.0.0.1, and the Python example agent (Debian's python3-paho-mqtt) as a process.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { toString } from 'uint8arrays'
import { canonicalJson, sha256 } from '../../protocols/hash.ts'
import { decodeAnswer, verifyAnswer } from '../../protocols/consensus/index.ts'
import { ed25519Verifier } from '../../node/network/crypto.ts'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { connectRing, untilTables } from '../../node/cli/local-mesh.ts'
import type { Peer } from '../../node/peer.ts'
import { startMqttBridge, MqttBridgeError, type MqttBridge } from '../../node/services/mqtt-bridge.ts'
import { defaultAgentSpecs } from '../../node/agents/registry.ts'
import { makeTlsFiles, startMosquitto, startSecuredMosquitto, type Broker } from '../helpers/mosquitto.ts'
import { usePeers } from '../helpers/peers.ts'
import { until } from '../helpers/until.ts'
import { freePort } from '../helpers/ports.ts'

const PREFIX = 'agentmesh/v1/local'
const USERS: Record<string, string> = { 'agentmesh-bridge': 'bridge-secret' }
for (let i = 1; i <= 12; i++) USERS[`edge-${i}`] = `pass-${i}`

let broker: Broker
beforeAll(async () => { broker = await startSecuredMosquitto(USERS) })
afterAll(async () => { await broker.stop() })

const { peer } = usePeers('agentmesh-mqtt-')
const bridges: MqttBridge[] = []
const agents: AgentProcess[] = []
const clients: MqttClient[] = []
afterEach(async () => {
  for (const a of agents.splice(0)) await a.kill('SIGKILL')
  await Promise.all(bridges.splice(0).map(async b => { await b.stop() }))
  await Promise.all(clients.splice(0).map(async c => { await c.endAsync() }))
})

interface AgentProcess {
  lines: string[]
  /** Resolves with the first line (past or future) matching `re`. */
  line (re: RegExp): Promise<string>
  kill (signal: NodeJS.Signals): Promise<void>
}

/** The Python example agent as its own process, logged in as `client`. */
function pythonAgent (client: string, ...args: string[]): AgentProcess {
  const child: ChildProcess = spawn('/usr/bin/python3', ['examples/python-agent/agent.py', '--broker', `127.0.0.1:${broker.port}`, '--client', client, ...args], {
    env: { ...process.env, AGENTMESH_MQTT_PASSWORD: USERS[client] },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: string[] = []
  const waiters: Array<{ re: RegExp, resolve: (l: string) => void }> = []
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  const take = (chunk: Buffer): void => {
    for (const l of chunk.toString().split('\n').filter(Boolean)) {
      lines.push(l)
      for (const w of [...waiters]) if (w.re.test(l)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(l) }
    }
  }
  child.stdout!.on('data', take)
  child.stderr!.on('data', take)
  const p: AgentProcess = {
    lines,
    line: async re => {
      const seen = lines.find(l => re.test(l))
      if (seen !== undefined) return seen
      return await new Promise((resolve, reject) => {
        waiters.push({ re, resolve })
        void exited.then(() => reject(new Error(`agent exited before printing ${re}: ${lines.join(' | ')}`)))
      })
    },
    kill: async signal => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
    }
  }
  agents.push(p)
  return p
}

async function bridgeOn (p: Peer, events: Array<{ event: string, detail: Record<string, unknown> }> = []): Promise<MqttBridge> {
  const b = await startMqttBridge(p, {
    url: broker.url,
    network: 'local',
    env: { AGENTMESH_MQTT_USERNAME: 'agentmesh-bridge', AGENTMESH_MQTT_PASSWORD: USERS['agentmesh-bridge'] },
    onEvent: (event, detail) => { events.push({ event, detail }) }
  })
  bridges.push(b)
  return b
}

async function client (name: string, options: IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0, username: name, password: USERS[name], ...options })
  clients.push(c)
  return c
}

/** A bridge peer A (no agents of its own) and a requester B, connected. */
async function mesh (): Promise<[Peer, Peer]> {
  const a = await peer({ agents: [] })
  const b = await peer({ agents: defaultAgentSpecs() })
  await connectRing([a, b])
  return [a, b]
}

const knows = (p: Peer, id: string): boolean => p.capability.agents().some(v => v.body.agent === id)
const statsTask = (numbers: number[], deadlineMs = 20_000): unknown => ({
  deadlineMs: 60_000,
  subtasks: [{ id: 'stats', capability: { text: 'mean, median and standard deviation of a list of numbers', skills: ['statistics'] }, input: { numbers }, deadlineMs }]
})

describe('MQTT bridge with mosquitto and a Python agent', () => {
  it('a Python agent advertises through the bridge; another peer routes a subtask to it and gets its answer', async () => {
    const [a, b] = await mesh()
    await bridgeOn(a)
    const agent = pythonAgent('edge-1')
    await agent.line(/online as edge-1\/stats/)
    const id = `${a.peerId}/mqtt.edge-1.stats`
    await untilTables([a, b], () => knows(b, id))
    // Signed by the bridge peer, with the advert's fields.
    const vcv = b.capability.agents().find(v => v.body.agent === id)!
    expect(vcv.body).toMatchObject({ skills: ['statistics', 'mean', 'median', 'stdev', 'math'], cost: 0.1 })
    await b.whenIndexed()
    const report = await b.tasks.submit(statsTask([2, 4, 4, 4, 5, 5, 7, 9])).finished
    expect(report.status, JSON.stringify(report.trace)).toBe('done')
    expect(report.outputs.stats).toEqual({ mean: 5, median: 4.5, stdev: expect.closeTo(2.138, 3), count: 8 })
    expect(report.trace.find(t => t.kind === 'dispatch')?.agent).toBe(id)
    // The agent's refusal of bad input is the requester's answer, not a silent failure.
    const bad = await b.rpc.execute(id, { numbers: [] }, 5000)
    expect(bad).toEqual({ ok: false, kind: 'input', error: '"numbers" must be a non-empty list of numbers' })
    // Input that breaks the agent's arithmetic is a failed call, and the agent lives on.
    expect(await b.rpc.execute(id, { numbers: [1e308, 1e308] }, 5000)).toMatchObject({ ok: false, kind: 'failed' })
    expect(await b.rpc.execute(id, { numbers: [1, 3] }, 5000)).toMatchObject({ ok: true, output: { mean: 2 } })
  })

  it('a killed agent is withdrawn on every peer; its call in flight fails at once and the task reroutes to another MQTT agent', async () => {
    const [a, b] = await mesh()
    await bridgeOn(a)
    // The slow agent holds its answer for a minute: only its death can end the call early.
    const slow = pythonAgent('edge-2', '--delay-ms', '60000')
    const slowId = `${a.peerId}/mqtt.edge-2.stats`
    await untilTables([a, b], () => knows(b, slowId))
    await b.whenIndexed()
    const run = b.tasks.submit(statsTask([1, 2, 3], 50_000))
    await slow.line(/^request /)
    pythonAgent('edge-3')
    const fastId = `${a.peerId}/mqtt.edge-3.stats`
    await untilTables([a, b], () => knows(b, fastId))
    await b.whenIndexed()
    await slow.kill('SIGKILL')
    // The broker publishes the last will ("offline"); the bridge's tombstone reaches every peer.
    await untilTables([a, b], () => !knows(a, slowId) && !knows(b, slowId))
    const report = await run.finished
    expect(report.status, JSON.stringify(report.trace)).toBe('done')
    expect(report.outputs.stats).toMatchObject({ mean: 2, median: 2 })
    const reroute = report.trace.find(t => t.kind === 'reroute')
    expect(reroute).toMatchObject({ agent: slowId, reason: expect.stringMatching(/MQTT client edge-2 went offline/) })
    expect(report.trace.filter(t => t.kind === 'dispatch').map(t => t.agent)).toEqual([slowId, fastId])
  })

  it('a late agent\'s call times out like any other\'s; its late reply is refused with the reason on its errors topic', async () => {
    const [a] = await mesh()
    const events: Array<{ event: string, detail: Record<string, unknown> }> = []
    await bridgeOn(a, events)
    const late = pythonAgent('edge-4', '--delay-ms', '1500')
    const id = `${a.peerId}/mqtt.edge-4.stats`
    await until(() => knows(a, id))
    const result = await a.rpc.execute(id, { numbers: [1] }, 300)
    expect(result).toMatchObject({ ok: false, kind: 'timeout' })
    // The Python agent prints what the bridge publishes on its errors topic.
    await late.line(/bridge says: .*came after its deadline/)
    expect(events.some(e => e.event === 'mqtt-refused' && /came after its deadline/.test(String(e.detail.reason)))).toBe(true)
  })

  it('instances of one agent share its calls through $share; the agent stays while one instance lives', async () => {
    const [a, b] = await mesh()
    await bridgeOn(a)
    const one = pythonAgent('edge-5', '--instance', 'one')
    const two = pythonAgent('edge-5', '--instance', 'two')
    await Promise.all([one.line(/online/), two.line(/online/)])
    const id = `${a.peerId}/mqtt.edge-5.stats`
    await untilTables([a, b], () => knows(b, id))
    const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => await b.rpc.execute(id, { numbers: [i, i + 2] }, 10_000)))
    expect(results.every(r => r.ok)).toBe(true)
    const served = (p: AgentProcess): Set<string> => new Set(p.lines.filter(l => l.startsWith('request ')).map(l => l.slice(8)))
    // The agents' stdout may trail their MQTT replies: wait for the lines, then count.
    await until(() => served(one).size + served(two).size >= 20)
    // Each request went to one instance: 20 attempts in all, none to both, and both took some.
    expect(new Set([...served(one), ...served(two)]).size).toBe(20)
    expect(served(one).size + served(two).size).toBe(20)
    expect(served(one).size).toBeGreaterThan(0)
    expect(served(two).size).toBeGreaterThan(0)
    // The broker hands "one" requests until it has seen its socket close, which is when it
    // publishes its will: wait for that (a call sent before it would time out, as any call to a
    // dead agent does, and the task would reroute).
    const watcher = await client('edge-5')
    const offline = new Promise<void>(resolve => {
      watcher.on('message', (_t, payload) => { if (payload.toString() === 'offline') resolve() })
    })
    await watcher.subscribeAsync(`${PREFIX}/agents/edge-5/status/one`, { qos: 1 })
    await one.kill('SIGKILL')
    await offline
    // Still online through "two": a call still succeeds, and the agent was never withdrawn.
    const after = await b.rpc.execute(id, { numbers: [1, 3] }, 10_000)
    expect(after).toMatchObject({ ok: true, output: { mean: 2 } })
    expect(knows(b, id)).toBe(true)
    await two.kill('SIGKILL')
    await untilTables([a, b], () => !knows(a, id) && !knows(b, id))
  })

  it('refuses what a client may not do: another client\'s name (broker ACL), invalid adverts and replies (with reasons on its errors topic)', async () => {
    const [a, b] = await mesh()
    const events: Array<{ event: string, detail: Record<string, unknown> }> = []
    await bridgeOn(a, events)
    const mallory = await client('edge-6')
    const errors: string[] = []
    await mallory.subscribeAsync(`${PREFIX}/clients/edge-6/errors`, { qos: 1 })
    mallory.on('message', (_t, payload) => { errors.push(JSON.parse(payload.toString()).reason) })
    // Under another client's name: the broker refuses the publish (PUBACK "Not authorized").
    await expect(mallory.publishAsync(`${PREFIX}/agents/edge-1/evil/advert`, JSON.stringify({ description: 'steals edge-1 work', skills: ['statistics'] }), { qos: 1, retain: true }))
      .rejects.toMatchObject({ code: 0x87, message: expect.stringMatching(/Not authorized/) })
    // Under its own name, an advert the VCV rules refuse, and an unknown field: reasons come back.
    await mallory.publishAsync(`${PREFIX}/agents/edge-6/status`, 'online', { qos: 1, retain: true })
    await mallory.publishAsync(`${PREFIX}/agents/edge-6/big/advert`, JSON.stringify({ description: 'x'.repeat(5000) }), { qos: 1, retain: true })
    await mallory.publishAsync(`${PREFIX}/agents/edge-6/odd/advert`, JSON.stringify({ description: 'fine', owner: 'me' }), { qos: 1, retain: true })
    await until(() => errors.length >= 2)
    expect(errors).toEqual(expect.arrayContaining([expect.stringMatching(/^advert refused: .*description/), 'advert refused: unknown field "owner" — allowed: description, skills, inputSchema, outputSchema, costPerCall, latencyMs, capacity, policy, publicKey']))
    // A reply to a request it never got is refused and logged.
    await mallory.publishAsync(`${PREFIX}/agents/edge-6/big/reply/${a.peerId}`, JSON.stringify({ output: 1 }), { qos: 1, properties: { correlationData: Buffer.from('made-up-1') } })
    await until(() => errors.length >= 3)
    expect(errors[2]).toMatch(/reply refused: attempt made-up-1 came after its deadline/)
    expect(events.filter(e => e.event === 'mqtt-refused').length).toBeGreaterThanOrEqual(3)
    // None of it reached the mesh.
    expect(a.capability.agents().filter(v => v.body.agent.startsWith(`${a.peerId}/mqtt.`))).toEqual([])
    expect(b.capability.agents().some(v => v.body.agent.includes('mqtt.'))).toBe(false)
    await mallory.publishAsync(`${PREFIX}/agents/edge-6/big/advert`, '', { qos: 1, retain: true })
    await mallory.publishAsync(`${PREFIX}/agents/edge-6/odd/advert`, '', { qos: 1, retain: true })
    await mallory.publishAsync(`${PREFIX}/agents/edge-6/status`, '', { qos: 1, retain: true })
  })

  it('an agent with its own key signs its replies: signed answers carry its endorsement, an unsigned reply is refused', async () => {
    const [a, b] = await mesh()
    await bridgeOn(a)
    const home = mkdtempSync(join(tmpdir(), 'agentmesh-mqtt-key-'))
    try {
      const keyed = pythonAgent('edge-9', '--key', join(home, 'agent.key'))
      await keyed.line(/online/)
      const id = `${a.peerId}/mqtt.edge-9.stats`
      await untilTables([a, b], () => knows(b, id))
      // What a trusted subtask asks: an answer signed for this subtask and input.
      const input = { numbers: [1, 2, 3, 4] }
      const sign = { subtask: 'task-1/stats', inputHash: toString(sha256(canonicalJson(input)), 'base16') }
      const result = await b.rpc.execute(id, input, 10_000, undefined, sign)
      expect(result.ok).toBe(true)
      const answer = decodeAnswer((result as { answer: Uint8Array }).answer)
      expect(verifyAnswer(answer, ed25519Verifier())).toBe(true)
      const key = readFileSync(join(home, 'agent.key'))
      const { createPrivateKey, createPublicKey } = await import('node:crypto')
      const pub = createPublicKey(createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), key]), format: 'der', type: 'pkcs8' }))
      expect(Buffer.from(answer.body.endorsement!.key).toString('base64url')).toBe(pub.export({ format: 'jwk' }).x)
      expect(answer.body).toMatchObject({ subtask: 'task-1/stats', agent: id, answer: { mean: 2.5, count: 4 } })
      // Someone logged in as edge-9 (a stolen password) without the key cannot answer for it.
      await keyed.kill('SIGKILL')
      await untilTables([a, b], () => !knows(a, id) && !knows(b, id))
      const impostor = await client('edge-9')
      const errors: string[] = []
      await impostor.subscribeAsync([`${PREFIX}/agents/edge-9/stats/request`, `${PREFIX}/clients/edge-9/errors`], { qos: 1 })
      impostor.on('message', (topic, payload, packet) => {
        if (topic.endsWith('/errors')) return void errors.push(JSON.parse(payload.toString()).reason)
        void impostor.publishAsync(packet.properties!.responseTopic!, JSON.stringify({ output: { mean: 1 } }), { qos: 1, properties: { correlationData: packet.properties!.correlationData } })
      })
      // The retained advert (with the key) is still there: going online brings the agent back…
      await impostor.publishAsync(`${PREFIX}/agents/edge-9/status`, 'online', { qos: 1, retain: true })
      await until(() => knows(a, id))
      // …but an unsigned reply is refused,
      expect(await a.rpc.execute(id, input, 10_000)).toEqual({ ok: false, kind: 'failed', error: 'the MQTT agent\'s reply was refused: it has no "signature" user property (base64 Ed25519), and its advert has a publicKey' })
      // and so is an advert that drops the key (the bridge pinned it): the agent leaves the mesh.
      await impostor.publishAsync(`${PREFIX}/agents/edge-9/stats/advert`, JSON.stringify({ description: 'stats, unsigned now', skills: ['statistics'] }), { qos: 1, retain: true })
      await until(() => errors.some(e => /this agent signs its replies with key/.test(e)))
      await until(() => !knows(a, id))
      await impostor.publishAsync(`${PREFIX}/agents/edge-9/status`, '', { qos: 1, retain: true })
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  })

  it('a call in flight to an agent with its own key fails with the real reason when its client goes offline', async () => {
    const [a] = await mesh()
    await bridgeOn(a)
    const home = mkdtempSync(join(tmpdir(), 'agentmesh-mqtt-key-'))
    try {
      const slow = pythonAgent('edge-10', '--key', join(home, 'agent.key'), '--delay-ms', '60000')
      const id = `${a.peerId}/mqtt.edge-10.stats`
      await until(() => knows(a, id))
      const call = a.rpc.execute(id, { numbers: [1] }, 50_000)
      await slow.line(/^request /)
      await slow.kill('SIGKILL')
      expect(await call).toEqual({ ok: false, kind: 'failed', error: 'MQTT client edge-10 went offline' })
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  })

  it('a task published over MQTT runs in the mesh and its report comes back on the response topic', async () => {
    const [a, b] = await mesh()
    await bridgeOn(a)
    // A's table must know B's arithmetic agent before it can route there.
    await untilTables([a, b], () => knows(a, `${b.peerId}/arithmetic`))
    await a.whenIndexed()
    const device = await client('edge-7')
    const reports = `${PREFIX}/clients/edge-7/reports`
    await device.subscribeAsync(reports, { qos: 1 })
    const got = new Promise<{ body: Record<string, unknown>, correlation: string }>(resolve => {
      device.on('message', (topic, payload, packet) => { if (topic === reports) resolve({ body: JSON.parse(payload.toString()), correlation: packet.properties?.correlationData?.toString() ?? '' }) })
    })
    await device.publishAsync(`${PREFIX}/clients/edge-7/tasks/submit`, JSON.stringify({ subtasks: [{ id: 'sum', capability: { skills: ['arithmetic'] }, input: { expression: '6 * 7' } }] }), {
      qos: 1, properties: { responseTopic: reports, correlationData: Buffer.from('req-1') }
    })
    const { body, correlation } = await got
    expect(correlation).toBe('req-1')
    expect(body).toMatchObject({ status: 'done', outputs: { sum: { value: 42 } } })
  })

  it('`agentmesh node --mqtt` bridges the shell example (mosquitto_sub/mosquitto_pub) into the mesh', async () => {
    const home = mkdtempSync(join(tmpdir(), 'agentmesh-mqtt-cli-'))
    const apiPort = await freePort()
    const node = spawn(process.execPath, ['bin/agentmesh.js', 'node', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', String(apiPort), '--data', join(home, 'node'), '--mqtt', broker.url, '--json'], {
      env: { ...process.env, AGENTMESH_HOME: home, AGENTMESH_MQTT_USERNAME: 'agentmesh-bridge', AGENTMESH_MQTT_PASSWORD: USERS['agentmesh-bridge'] },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const shell = spawn('sh', ['examples/shell-agent/agent.sh', '127.0.0.1', String(broker.port), 'edge-8'], { env: { ...process.env, AGENTMESH_MQTT_PASSWORD: USERS['edge-8'] }, stdio: 'ignore', detached: true })
    try {
      const events: Array<Record<string, unknown>> = []
      let out = ''
      const seen = new Set<() => void>()
      node.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d
        const lines = out.split('\n')
        out = lines.pop()!
        for (const l of lines) events.push(JSON.parse(l))
        for (const f of [...seen]) f()
      })
      let stderr = ''
      node.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d })
      const event = async (name: string, match: (e: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> => await new Promise((resolve, reject) => {
        const check = (): void => {
          const e = events.find(x => x.event === name && match(x))
          if (e !== undefined) { seen.delete(check); resolve(e) }
          if (node.exitCode !== null) reject(new Error(`node exited: ${stderr}`))
        }
        seen.add(check)
        node.once('exit', check)
        check()
      })
      const ready = await event('ready')
      await event('mqtt-connected')
      await event('mqtt-agent-advertised', e => e.agent === 'mqtt.edge-8.load')
      const b = await peer({ agents: [] })
      expect(await b.dial([(ready.multiaddrs as string[])[0]!])).toEqual([])
      const id = `${String(ready.peerId)}/mqtt.edge-8.load`
      await untilTables([b], () => knows(b, id))
      const result = await b.rpc.execute(id, null, 10_000)
      expect(result).toMatchObject({ ok: true, output: { load1: expect.any(Number), load15: expect.any(Number) }, confidence: 1 })
      const status = await (await fetch(`http://127.0.0.1:${apiPort}/status`)).json() as { mqtt: Record<string, unknown>, localAgents: string[] }
      expect(status.mqtt).toMatchObject({ prefix: PREFIX, connected: true, agents: 1, requests: 1, answered: 1 })
      expect(status.localAgents).toContain('mqtt.edge-8.load')
      node.kill('SIGTERM')
      expect(await new Promise(resolve => node.once('exit', code => resolve(code)))).toBe(0)
    } finally {
      node.kill('SIGKILL')
      try { process.kill(-shell.pid!, 'SIGKILL') } catch {}
      rmSync(home, { recursive: true, force: true })
    }
  })

  it('a lost broker takes the bridge\'s agents out of the mesh; they come back with it', async () => {
    const own = await startSecuredMosquitto(USERS)
    try {
      const [a, b] = await mesh()
      const events: Array<{ event: string, detail: Record<string, unknown> }> = []
      bridges.push(await startMqttBridge(a, {
        url: own.url,
        network: 'local',
        env: { AGENTMESH_MQTT_USERNAME: 'agentmesh-bridge', AGENTMESH_MQTT_PASSWORD: USERS['agentmesh-bridge'] },
        onEvent: (event, detail) => { events.push({ event, detail }) }
      }))
      const child = spawn('/usr/bin/python3', ['examples/python-agent/agent.py', '--broker', `127.0.0.1:${own.port}`, '--client', 'edge-1'], { env: { ...process.env, AGENTMESH_MQTT_PASSWORD: USERS['edge-1'] }, stdio: 'ignore' })
      try {
        const id = `${a.peerId}/mqtt.edge-1.stats`
        await untilTables([a, b], () => knows(b, id))
        // A crashed broker sends no last wills: only the bridge noticing the lost connection withdraws the agent.
        await own.stop('SIGKILL')
        await untilTables([a, b], () => !knows(a, id) && !knows(b, id))
        expect(events.find(e => e.event === 'mqtt-agent-withdrawn')?.detail).toMatchObject({ agent: 'mqtt.edge-1.stats', reason: 'the bridge lost its broker connection' })
        expect(events.some(e => e.event === 'mqtt-disconnected')).toBe(true)
        // Same port: the bridge and the agent reconnect by themselves; the agent advertises again.
        const again = await startSecuredMosquitto(USERS, own.port)
        try {
          await untilTables([a, b], () => knows(b, id), 30_000)
        } finally {
          child.kill('SIGKILL')
          for (const bridge of bridges.splice(0)) await bridge.stop()
          await again.stop()
        }
      } finally {
        child.kill('SIGKILL')
      }
    } finally {
      await own.stop().catch(() => {})
    }
  })

  it('connects over TLS (mqtts://) with the broker\'s CA, and refuses a broker it cannot trust, saying to give --mqtt-ca', async () => {
    const tls = makeTlsFiles()
    const tlsBroker = await startMosquitto([`cafile ${tls.ca}`, `certfile ${tls.cert}`, `keyfile ${tls.key}`])
    try {
      const a = await peer({ agents: [] })
      const url = `mqtts://127.0.0.1:${tlsBroker.port}`
      const bridge = await startMqttBridge(a, { url, network: 'local', ca: tls.ca })
      bridges.push(bridge)
      expect(bridge.stats().connected).toBe(true)
      // The Python example over TLS too: it joins the mesh through the TLS listener.
      const agent = spawn('/usr/bin/python3', ['examples/python-agent/agent.py', '--broker', `127.0.0.1:${tlsBroker.port}`, '--client', 'edge-1', '--ca', tls.ca], { stdio: 'ignore' })
      try {
        await until(() => a.capability.agents().some(v => v.body.agent === `${a.peerId}/mqtt.edge-1.stats`))
        expect(await a.rpc.execute(`${a.peerId}/mqtt.edge-1.stats`, { numbers: [3, 5] }, 10_000)).toMatchObject({ ok: true, output: { mean: 4 } })
      } finally {
        agent.kill('SIGKILL')
      }
      await expect(startMqttBridge(a, { url, network: 'local', connectTimeoutMs: 20_000 })).rejects.toThrow(/cannot trust the MQTT broker .*--mqtt-ca FILE/)
      await expect(startMqttBridge(a, { url, network: 'local', ca: join(tls.dir, 'missing.pem') })).rejects.toThrow(/cannot read the MQTT CA file/)
    } finally {
      for (const b of bridges.splice(0)) await b.stop()
      await tlsBroker.stop()
      rmSync(tls.dir, { recursive: true, force: true })
    }
  })

  it('refuses to start with a wrong password or a URL that carries credentials, saying what to fix', async () => {
    const a = await peer({ agents: [] })
    await expect(startMqttBridge(a, { url: broker.url, network: 'local', env: { AGENTMESH_MQTT_USERNAME: 'agentmesh-bridge', AGENTMESH_MQTT_PASSWORD: 'wrong' } })).rejects.toThrow(/refused the bridge: .*AGENTMESH_MQTT_USERNAME/)
    await expect(startMqttBridge(a, { url: `mqtt://u:p@127.0.0.1:${broker.port}`, network: 'local' })).rejects.toThrow(MqttBridgeError)
    await expect(startMqttBridge(a, { url: 'http://127.0.0.1:1', network: 'local' })).rejects.toThrow(/must start with mqtt:\/\//)
    // Nothing listening: the peer is told within the connect timeout, not left retrying in silence.
    await expect(startMqttBridge(a, { url: `mqtt://127.0.0.1:${await freePort()}`, network: 'local', connectTimeoutMs: 1500 })).rejects.toThrow(/cannot connect to the MQTT broker .* within 1.5 s \(.*ECONNREFUSED/)
  })
})
