// Reloading the hosted agents without a restart: `Peer.reloadAgents` on two real peers over TCP on
// 127.0.0.1, and SIGHUP on real `agentmesh node` and `agentmesh join` processes.
import { describe, it, expect, afterEach } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Agent, AgentSpec } from '../../node/agents/agent.ts'
import type { VcvJson } from '../../node/api/present.ts'
import { connectRing, untilTables } from '../../node/cli/local-mesh.ts'
import { PeerStartError, type Peer } from '../../node/peer.ts'
import type { CapabilityEvents } from '../../node/services/capability-service.ts'
import { limits, type SignedVcv } from '../../protocols/capability/index.ts'
import { usePeers } from '../helpers/peers.ts'
import { until } from '../helpers/until.ts'

const WAIT_MS = 20_000

// ---- Peer.reloadAgents ------------------------------------------------------------------------

const { peer } = usePeers('agentmesh-reload-')

/** Resolves with the detail of the first `type` event of `p` that satisfies `match` (listen before acting). */
function nextEvent<K extends 'agent:added' | 'agent:updated' | 'agent:removed'> (
  p: Peer, type: K, match: (detail: CapabilityEvents[K]['detail']) => boolean
): Promise<CapabilityEvents[K]['detail']> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { p.capability.removeEventListener(type, on as never); reject(new Error(`no ${type} event within ${WAIT_MS} ms`)) }, WAIT_MS)
    const on = (e: CapabilityEvents[K]): void => {
      if (!match(e.detail)) return
      clearTimeout(timer)
      p.capability.removeEventListener(type, on as never)
      resolve(e.detail)
    }
    p.capability.addEventListener(type, on as never)
  })
}

/** Resolves once `from` knows that `to` subscribes to the capability topic, so `from`'s gossip reaches `to`. */
async function subscribed (from: Peer, to: Peer): Promise<void> {
  const pubsub = from.libp2p.services.pubsub
  const known = (): boolean => pubsub.getSubscribers(from.capability.topic).some(id => id.equals(to.libp2p.peerId))
  if (known()) return
  await new Promise<void>(resolve => {
    const check = (): void => { if (known()) { pubsub.removeEventListener('subscription-change', check); resolve() } }
    pubsub.addEventListener('subscription-change', check)
  })
}

/** `host` and `other`, connected, each knowing both agents, `host`'s gossip reaching `other`. */
async function pair (hostAgents: AgentSpec[], customAgents: Agent[] = []): Promise<[Peer, Peer]> {
  // An hour-long lifetime: no periodic re-advertisement moves a version during the test.
  const host = await peer({ agents: hostAgents, customAgents, ttlMs: 3_600_000 })
  const other = await peer({ agents: [{ kind: 'sort' }], ttlMs: 3_600_000 })
  await connectRing([host, other])
  const total = hostAgents.length + customAgents.length + 1
  await untilTables([host, other], () => host.capability.agents().length === total && other.capability.agents().length === total)
  await subscribed(host, other)
  return [host, other]
}

const vcvOf = (p: Peer, agent: string): SignedVcv | undefined => p.capability.agents().find(v => v.body.agent === agent)
/** The names `p` sees hosted by `host`, sorted. */
const namesOf = (p: Peer, host: Peer): string[] => p.capability.agents().filter(v => v.body.agent.startsWith(`${host.peerId}/`)).map(v => v.body.agent.slice(host.peerId.length + 1)).sort()
/** Each of the host's own agent ids with its version, as its own table has them. */
const ownVersions = (host: Peer): Record<string, number> => Object.fromEntries(host.capability.agents().filter(v => v.body.agent.startsWith(`${host.peerId}/`)).map(v => [v.body.agent, v.body.version]))

const CONV: AgentSpec = { kind: 'unit-convert', name: 'conv', skills: ['units', 'convert'], costPerCall: 0.25 }
const KM = { value: 2, from: 'km', to: 'm' }

/** Calls an agent; `error` is undefined on success. */
async function call (from: Peer, agent: string, input: unknown): Promise<{ ok: boolean, output?: unknown, error?: string }> {
  const r = await from.rpc.execute(agent, input, 10_000)
  return r.ok ? { ok: true, output: r.output } : { ok: false, error: r.error }
}

describe('Peer.reloadAgents on two connected peers', () => {
  it('adds, changes and removes agents: the other peer learns each step and a removed agent no longer answers', async () => {
    const [host, other] = await pair([{ kind: 'arithmetic' }])
    const conv = `${host.peerId}/conv`

    // Added: the other peer receives the new agent's VCV.
    const added = nextEvent(other, 'agent:added', v => v.body.agent === conv)
    expect(host.reloadAgents([{ kind: 'arithmetic' }, CONV])).toEqual({ added: ['conv'], changed: [], removed: [] })
    const first = await added
    expect(first.body).toMatchObject({ skills: ['units', 'convert'], cost: 0.25 })
    expect(namesOf(other, host)).toEqual(['arithmetic', 'conv'])
    expect([...host.agents.keys()].sort()).toEqual(['arithmetic', 'conv'])
    expect(await call(other, conv, KM)).toEqual({ ok: true, output: { value: 2000, unit: 'm' } })

    // Changed: a new version with the new fields replaces the old one on the other peer.
    const updated = nextEvent(other, 'agent:updated', v => v.body.agent === conv)
    const arithmeticVersion = vcvOf(other, `${host.peerId}/arithmetic`)!.body.version
    expect(host.reloadAgents([{ kind: 'arithmetic' }, { ...CONV, costPerCall: 0.75, description: 'converts units, now dearer' }]))
      .toEqual({ added: [], changed: ['conv'], removed: [] })
    const second = await updated
    expect(second.body.version).toBeGreaterThan(first.body.version)
    expect(second.body).toMatchObject({ cost: 0.75, description: 'converts units, now dearer' })
    expect(vcvOf(other, conv)!.body.version).toBe(second.body.version)
    // The unchanged agent was not advertised again.
    expect(vcvOf(host, `${host.peerId}/arithmetic`)!.body.version).toBe(arithmeticVersion)

    // Removed: withdrawn everywhere, and the host refuses calls to it.
    const removed = nextEvent(other, 'agent:removed', d => d.agent === conv)
    expect(host.reloadAgents([{ kind: 'arithmetic' }])).toEqual({ added: [], changed: [], removed: ['conv'] })
    expect(await removed).toEqual({ agent: conv, reason: 'withdrawn' })
    expect(namesOf(other, host)).toEqual(['arithmetic'])
    expect([...host.agents.keys()]).toEqual(['arithmetic'])
    const refused = await call(other, conv, KM)
    expect(refused.ok).toBe(false)
    expect(refused.error).toContain('no agent named "conv" on this host')
    // The agent that stayed still answers.
    expect(await call(other, `${host.peerId}/arithmetic`, { expression: '6*7' })).toMatchObject({ ok: true, output: { value: 42 } })
  })

  it('two agents of the same name: PeerStartError, and nothing is withdrawn, added or re-advertised', async () => {
    const [host, other] = await pair([{ kind: 'arithmetic' }, CONV])
    const versions = ownVersions(host)
    const counters = host.capability.versions()
    const seenBefore = namesOf(other, host)
    // Were this list applied in part, "arithmetic" and "conv" would be withdrawn and "x" added.
    expect(() => host.reloadAgents([{ kind: 'sort', name: 'x' }, { kind: 'text-stats', name: 'x' }])).toThrow(PeerStartError)
    expect(() => host.reloadAgents([{ kind: 'sort', name: 'x' }, { kind: 'text-stats', name: 'x' }])).toThrow('two agents are named "x"')
    // Also when one of them merely takes a spec agent's name over a new kind.
    expect(() => host.reloadAgents([{ kind: 'arithmetic' }, { kind: 'sort', name: 'arithmetic' }])).toThrow(PeerStartError)
    // And when a later agent could not be advertised (too long for the wire): checked before "conv" goes.
    const tooLong: AgentSpec = { kind: 'sort', name: 'long', description: 'x'.repeat(limits.maxDescriptionLength + 1) }
    expect(() => host.reloadAgents([{ kind: 'arithmetic' }, tooLong])).toThrow('agent "long" cannot be advertised')
    expect([...host.agents.keys()].sort()).toEqual(['arithmetic', 'conv'])
    expect(ownVersions(host)).toEqual(versions)
    // No version was spent either: a withdrawal or an advertisement would have bumped one.
    expect(host.capability.versions()).toEqual(counters)
    expect(await call(other, `${host.peerId}/conv`, KM)).toMatchObject({ ok: true })

    // A valid reload afterwards works from the unchanged state: had the failed one half-applied,
    // "x" would show up here as already hosted or "arithmetic"/"conv" as already gone.
    const removed = nextEvent(other, 'agent:removed', d => d.agent === `${host.peerId}/conv`)
    expect(host.reloadAgents([{ kind: 'arithmetic' }])).toEqual({ added: [], changed: [], removed: ['conv'] })
    await removed
    expect(namesOf(other, host)).toEqual(['arithmetic'])
    expect(seenBefore).toEqual(['arithmetic', 'conv'])
  })

  it('an agent given in code keeps its name: a spec may not take it, and a reload never withdraws it', async () => {
    const custom: Agent = {
      describe: () => ({ name: 'custom', description: 'an agent built in code', skills: ['custom'], inputSchema: { type: 'object' }, outputSchema: { type: 'object' }, costPerCall: 1, latencyMs: 5, capacity: 1, policy: [] }),
      handle: async () => ({ output: { ok: 1 }, confidence: 1 })
    }
    const [host, other] = await pair([{ kind: 'arithmetic' }], [custom])
    const counters = host.capability.versions()
    expect(() => host.reloadAgents([{ kind: 'arithmetic' }, { kind: 'sort', name: 'custom' }])).toThrow(PeerStartError)
    expect(host.capability.versions()).toEqual(counters)
    expect([...host.agents.keys()].sort()).toEqual(['arithmetic', 'custom'])

    const removed = nextEvent(other, 'agent:removed', d => d.agent === `${host.peerId}/arithmetic`)
    expect(host.reloadAgents([])).toEqual({ added: [], changed: [], removed: ['arithmetic'] })
    await removed
    expect(namesOf(other, host)).toEqual(['custom'])
    expect([...host.agents.keys()]).toEqual(['custom'])
    expect(await call(other, `${host.peerId}/custom`, {})).toEqual({ ok: true, output: { ok: 1 } })
  })

  it('a host may not host more agents than the network lets it advertise, at start or by reload', async () => {
    const many = (n: number): AgentSpec[] => Array.from({ length: n }, (_, i) => ({ kind: 'sort', name: `s${i}` }))
    await expect(peer({ agents: many(33) })).rejects.toThrow('33 agents, but network "local" lets a host advertise 32')
    const [host] = await pair(many(31))
    const counters = host.capability.versions()
    expect(() => host.reloadAgents(many(33))).toThrow(PeerStartError)
    expect(host.capability.versions()).toEqual(counters)
    expect(host.reloadAgents(many(32)).added).toEqual(['s31'])
  })

  it('the same specs again change nothing: no new version anywhere', async () => {
    const specs: AgentSpec[] = [{ kind: 'arithmetic' }, CONV]
    const [host, other] = await pair(specs)
    const versions = ownVersions(host)
    const counters = host.capability.versions()
    const seen = Object.fromEntries(other.capability.agents().map(v => [v.body.agent, v.body.version]))
    // Equal specs in new objects, as a re-read file gives.
    expect(host.reloadAgents(structuredClone(specs))).toEqual({ added: [], changed: [], removed: [] })
    expect(host.reloadAgents(structuredClone(specs))).toEqual({ added: [], changed: [], removed: [] })
    expect(ownVersions(host)).toEqual(versions)
    expect(host.capability.versions()).toEqual(counters)

    // A change made after them is the next version, one above the start: the no-op reloads issued none.
    const updated = nextEvent(other, 'agent:updated', v => v.body.agent === `${host.peerId}/conv`)
    expect(host.reloadAgents([{ kind: 'arithmetic' }, { ...CONV, costPerCall: 2 }])).toEqual({ added: [], changed: ['conv'], removed: [] })
    expect((await updated).body.version).toBe(seen[`${host.peerId}/conv`]! + 1)
  })
})

// ---- SIGHUP on agentmesh node and join ----------------------------------------------------------

const BIN = fileURLToPath(new URL('../../bin/agentmesh.js', import.meta.url))

interface Exit { code: number | null, signal: NodeJS.Signals | null }
interface Proc {
  child: ChildProcess
  pid: number
  stdout: string
  stderr: string
  exited: Exit | undefined
  /** Resolves with the first JSON line of stdout that satisfies `test`, re-checked on every output. */
  line: <T = Record<string, unknown>>(what: string, test: (o: Record<string, unknown>) => boolean) => Promise<T>
  exit: () => Promise<Exit>
}

const procs: Proc[] = []
const homes: string[] = []

afterEach(async () => {
  for (const p of procs.splice(0)) {
    if (p.exited === undefined) {
      try { process.kill(p.pid, 'SIGKILL') } catch {}
      await p.exit().catch(() => {})
    }
  }
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true })
})

function newHome (): string {
  const home = mkdtempSync(join(tmpdir(), 'agentmesh-reload-cli-'))
  homes.push(home)
  return home
}

function jsonLines (text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue
    try { out.push(JSON.parse(line) as Record<string, unknown>) } catch {} // a line still being written
  }
  return out
}

function start (home: string, args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, AGENTMESH_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] })
  const listeners = new Set<() => void>()
  const notify = (): void => { for (const l of [...listeners]) l() }
  const closed = new Promise<Exit>(resolve => { child.once('close', (code, signal) => { p.exited = { code, signal }; resolve(p.exited); notify() }) })
  const transcript = (): string => `agentmesh ${args.join(' ')}\n--- stdout ---\n${p.stdout}\n--- stderr ---\n${p.stderr}`
  const p: Proc = {
    child,
    pid: child.pid!,
    stdout: '',
    stderr: '',
    exited: undefined,
    line: (what, test) => new Promise((resolve, reject) => {
      const check = (): void => {
        const found = jsonLines(p.stdout).find(test)
        if (found !== undefined) { done(); resolve(found as never); return }
        if (p.exited !== undefined) { done(); reject(new Error(`exited (${JSON.stringify(p.exited)}) before ${what}\n${transcript()}`)) }
      }
      const timer = setTimeout(() => { done(); reject(new Error(`timed out waiting for ${what}\n${transcript()}`)) }, WAIT_MS)
      const done = (): void => { clearTimeout(timer); listeners.delete(check) }
      listeners.add(check)
      check()
    }),
    exit: async () => await Promise.race([closed, new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`no exit within ${WAIT_MS} ms\n${transcript()}`)), WAIT_MS).unref())])
  }
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { p.stdout += d; notify() })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { p.stderr += d; notify() })
  procs.push(p)
  return p
}

/**
 * Resolves once the process has a SIGHUP handler. The ready line is printed just before the handler
 * is installed, and a SIGHUP sent in between would kill the process (the default action). No
 * event says when it is installed, so the kernel's caught-signal mask is polled.
 */
async function catchesHangup (pid: number): Promise<void> {
  const caught = (): boolean => {
    const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    return mask !== undefined && (BigInt(`0x${mask}`) & 1n) === 1n // bit 0: signal 1, SIGHUP
  }
  await until(caught, WAIT_MS)
}

/** Resolves with PORT once nothing listens on 127.0.0.1:PORT (checked by listening on it, then closing). */
async function freePort (port: number): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', resolve) })
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

async function closedBootstrap (): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve) })
  const port = (server.address() as { port: number }).port
  await new Promise<void>(resolve => server.close(() => resolve()))
  return `/ip4/127.0.0.1/tcp/${port}/p2p/${peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()}`
}

type Ready = { event: 'ready', peerId: string, network: string, api: string | null, agents: string[] }
const isReady = (o: Record<string, unknown>): boolean => o['event'] === 'ready'

async function hostedByApi (api: string, peerId: string): Promise<string[]> {
  const res = await fetch(`${api}/agents`)
  expect(res.status).toBe(200)
  const agents = await res.json() as VcvJson[]
  return agents.filter(a => a.host === peerId).map(a => a.name).sort()
}

describe('SIGHUP re-reads --agents', () => {
  it('agentmesh node: an added agent is reloaded and served; a broken file is refused and the agents stay', async () => {
    const home = newHome()
    // Its own port, away from cli.test.ts's 27000-28399.
    const apiPort = await freePort(28510)
    const file = join(home, 'agents.yaml')
    writeFileSync(file, 'agents:\n  - kind: arithmetic\n')
    const node = start(home, ['node', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', String(apiPort), '--data', join(home, 'node'), '--agents', file, '--json'])
    const ready = await node.line<Ready>('the ready line', isReady)
    expect(ready.agents).toEqual(['arithmetic'])
    expect(ready.api).toBe(`http://127.0.0.1:${apiPort}`)
    await catchesHangup(node.pid)

    writeFileSync(file, 'agents:\n  - kind: arithmetic\n  - kind: unit-convert\n    name: conv\n    costPerCall: 0.5\n')
    process.kill(node.pid, 'SIGHUP')
    const reloaded = await node.line('agents-reloaded', o => o['event'] === 'agents-reloaded')
    expect(reloaded).toMatchObject({ event: 'agents-reloaded', file, added: ['conv'], changed: [], removed: [] })
    expect(await hostedByApi(ready.api!, ready.peerId)).toEqual(['arithmetic', 'conv'])

    writeFileSync(file, 'agents:\n  - kind: calculator\n')
    process.kill(node.pid, 'SIGHUP')
    const failed = await node.line<{ file: string, error: string }>('agents-reload-failed', o => o['event'] === 'agents-reload-failed')
    expect(failed.file).toBe(file)
    expect(failed.error).toContain(`${file}: agents[0]: unknown kind string "calculator"`)
    expect(await hostedByApi(ready.api!, ready.peerId)).toEqual(['arithmetic', 'conv'])
    expect(jsonLines(node.stdout).filter(o => o['event'] === 'agents-reloaded')).toHaveLength(1)
    expect(node.exited).toBeUndefined()

    process.kill(node.pid, 'SIGTERM')
    expect(await node.exit()).toEqual({ code: 0, signal: null })
    expect(node.stderr).toBe('')
  }, 60_000)

  it('agentmesh join: a removed agent is reported', async () => {
    const home = newHome()
    const net = join(home, 'reloadnet.yaml')
    writeFileSync(net, `name: reloadnet\nbootstrap:\n  - ${await closedBootstrap()}\nprivateAddresses: true\n`)
    const file = join(home, 'agents.yaml')
    writeFileSync(file, 'agents:\n  - kind: arithmetic\n  - kind: sort\n')
    const joined = start(home, ['join', net, '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', '0', '--data', join(home, 'peer'), '--agents', file, '--json'])
    const ready = await joined.line<Ready>('the ready line', isReady)
    expect(ready).toMatchObject({ network: 'reloadnet', api: null, agents: ['arithmetic', 'sort'] })
    await catchesHangup(joined.pid)

    writeFileSync(file, 'agents:\n  - kind: sort\n')
    process.kill(joined.pid, 'SIGHUP')
    expect(await joined.line('agents-reloaded', o => o['event'] === 'agents-reloaded'))
      .toEqual({ event: 'agents-reloaded', file, added: [], changed: [], removed: ['arithmetic'] })

    process.kill(joined.pid, 'SIGTERM')
    expect(await joined.exit()).toEqual({ code: 0, signal: null })
  }, 60_000)
})
