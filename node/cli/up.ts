/**
 * `agentmesh up --peers N`: N local peers as separate processes, connected to each other. Prints
 * who they are and the agents every peer sees; Ctrl-C stops them all and leaves none behind.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadAgentsFile } from '../agents/config.ts'
import { ringTargets } from './local-mesh.ts'
import { isPolicyName, POLICY_NAMES } from '../../protocols/routing/index.ts'
import { AGENT_HEADERS, agentRows, shortId, sortAgents, table } from '../api/present.ts'
import { integer, parse, UsageError } from './args.ts'
import { printReport, submitTask } from './task-commands.ts'
import { readFile } from 'node:fs/promises'
import { API_PORT_OFFSET, defaultDataDir, DEFAULT_PORT, type ChildMessage, type ParentMessage } from './shared.ts'

/** Up to this many peers, each runs in its own process (crash isolation, as before). */
const SOLO_LIMIT = 8
/**
 * Past SOLO_LIMIT, peers share this many processes per core: one, as measured (50 peers on 2
 * cores converged in 13-16 s in 2 processes, 18-22 s in 4; the work is CPU-bound either way).
 */
const PROCESSES_PER_CORE = 1
/** A start fails when no process has said anything for this long (progress, not a fixed wait). */
const STALL_MS = 30_000

export const upHelp = `agentmesh up --peers N [--agents FILE] [--base-port P] [--data DIR] [--ttl SECONDS]
             [--per-process K] [--until-converged] [--json] [--timeout SECONDS] [--demo]
             [--policy NAME]

Starts N peers (1-200) on 127.0.0.1: peer i listens on P+i (default P=${DEFAULT_PORT}) with its API
on P+${API_PORT_OFFSET}+i, keeps its identity in DIR/peer-i (default ~/.agentmesh/up) and hosts the
agents of FILE (default: the six demo agents). Each peer is its own libp2p node; --per-process K
runs K of them in each process (default: each peer its own process up to ${SOLO_LIMIT} peers, else the
peers spread evenly over one process per CPU core: a process costs ~1 s of CPU to start
and ~150 MiB, a peer sharing one 26-40 MiB). Peers re-dial their ring neighbours when a link drops.
--until-converged exits once every peer knows every agent (exit 1 after --timeout, default 60 s);
with --json it prints one JSON object: peers, agents, convergedMs, processes, memory, perPeer, …
--demo runs node/agents/demo-task.yaml through the mesh once it has converged (npm start does).`

const BIN = fileURLToPath(new URL('../../bin/agentmesh.js', import.meta.url))
const DEMO_TASK = fileURLToPath(new URL('../agents/demo-task.yaml', import.meta.url))

/** One process of the mesh and the peers it hosts. */
interface MeshProcess {
  child: ChildProcess
  peers: number[]
  stderr: string
  exited: boolean
  /** When the process last said anything (ms, performance clock). */
  heardAt: number
}

interface PeerProcess {
  index: number
  proc: MeshProcess
  port: number
  ready?: Extract<ChildMessage, { type: 'ready' }>
  known: Set<string>
  /** When this peer first knew every agent, ms after dialing began. */
  completeMs?: number
}

/** How many peers share a process by default (see upHelp). */
export function defaultPerProcess (n: number, cores = availableParallelism()): number {
  return n <= SOLO_LIMIT ? 1 : Math.ceil(n / (PROCESSES_PER_CORE * Math.max(1, cores)))
}

export async function upCommand (argv: string[]): Promise<number> {
  const { values } = parse('up', argv, {
    peers: { type: 'string' },
    agents: { type: 'string' },
    'base-port': { type: 'string' },
    data: { type: 'string' },
    ttl: { type: 'string' },
    'until-converged': { type: 'boolean' },
    json: { type: 'boolean' },
    timeout: { type: 'string' },
    demo: { type: 'boolean' },
    policy: { type: 'string' },
    'per-process': { type: 'string' }
  })
  if (values.peers === undefined) throw new UsageError('up: say how many peers, e.g. agentmesh up --peers 5')
  const n = integer('up', 'peers', values.peers, 5, 1, 200)
  const basePort = integer('up', 'base-port', values['base-port'], DEFAULT_PORT, 1024, 65535 - API_PORT_OFFSET - n)
  const ttl = integer('up', 'ttl', values.ttl, 60, 2, 86_400)
  const timeoutMs = integer('up', 'timeout', values.timeout, 60, 1, 3600) * 1000
  const perProcess = integer('up', 'per-process', values['per-process'], defaultPerProcess(n), 1, 200)
  const untilConverged = values['until-converged'] === true
  const json = values.json === true
  if (values.agents !== undefined) loadAgentsFile(values.agents) // fail here, once, before any process starts
  if (values.policy !== undefined && !isPolicyName(values.policy)) throw new UsageError(`up: unknown routing policy "${values.policy}" — use one of ${POLICY_NAMES.join(', ')}`)
  const dataDir = values.data ?? join(defaultDataDir(), 'up')
  await checkPortsFree(basePort, n)

  const out = (text: string): void => { if (!json) console.log(text) }
  const started = performance.now()
  const peers: PeerProcess[] = []
  const procs: MeshProcess[] = []
  for (let first = 0; first < n; first += perProcess) {
    const group = Array.from({ length: Math.min(perProcess, n - first) }, (_, k) => first + k)
    const spec = group.map(i => ({ index: i, port: basePort + i, apiPort: basePort + API_PORT_OFFSET + i, data: join(dataDir, `peer-${i}`) }))
    const args = ['node', '--child', '--peer-group', JSON.stringify(spec), '--ttl', String(ttl)]
    if (values.agents !== undefined) args.push('--agents', values.agents)
    if (values.policy !== undefined) args.push('--policy', values.policy)
    const child = fork(BIN, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    child.setMaxListeners(10 + 4 * group.length) // a few listeners per hosted peer
    const proc: MeshProcess = { child, peers: group, stderr: '', exited: false, heardAt: performance.now() }
    child.stderr?.on('data', (d: Buffer) => { proc.stderr = (proc.stderr + d.toString()).slice(-4000) })
    child.on('message', () => { proc.heardAt = performance.now() })
    child.on('exit', () => { proc.exited = true })
    procs.push(proc)
    for (const i of group) peers.push({ index: i, proc, port: basePort + i, known: new Set() })
  }
  const stopAll = async (): Promise<void> => { await Promise.all(procs.map(stopProcess)) }
  let interrupted = false
  const onSignal = (): void => { interrupted = true }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    await waitReady(peers, procs, () => interrupted)
    const readyMs = performance.now() - started
    if (!json) {
      out(`started ${n} peer${n > 1 ? 's' : ''} in ${procs.length} process${procs.length > 1 ? 'es' : ''} in ${Math.round(readyMs)} ms`)
      out(table(['PEER', 'ID', 'ADDRESS', 'API'], peers.map(p => [
        String(p.index), p.ready!.peerId, p.ready!.multiaddrs[0] ?? '', `127.0.0.1:${p.ready!.apiPort}`])))
    }
    const total = peers.reduce((sum, p) => sum + p.ready!.localAgents, 0)
    for (const p of peers) {
      onMessage(p, m => { if (m.type === 'state' && m.agents.length === total) p.completeMs ??= performance.now() })
    }
    const dialStart = performance.now()
    await connect(peers)
    const converged = await waitConverged(peers, total, timeoutMs, () => interrupted)
    const convergedMs = performance.now() - dialStart
    const perPeer = peers.map(p => ({ peer: p.index, peerId: p.ready!.peerId, known: p.known.size, completeMs: p.completeMs === undefined ? null : Math.round(p.completeMs - dialStart) }))
    if (!converged) {
      const lagging = perPeer.filter(p => p.known !== total).map(p => `peer ${p.peer} knows ${p.known}`).join(', ')
      const reason = interrupted ? 'interrupted' : `not converged after ${timeoutMs / 1000} s: ${total} agents in the mesh, but ${lagging}`
      if (json) console.log(JSON.stringify({ peers: n, agents: total, converged: false, reason, perPeer }))
      else console.error(reason)
      return interrupted ? 130 : 1
    }
    if (untilConverged && json) {
      const wallMs = Math.round(performance.now() - started)
      console.log(JSON.stringify({ peers: n, agents: total, converged: true, convergedMs: Math.round(convergedMs), startupMs: Math.round(readyMs), wallMs, processes: procs.length, perProcess, memory: await memory(procs), perPeer }))
      return 0
    }
    const agents = sortAgents(await listAgents(peers[0]!))
    const seenBy = agents.map(a => `${peers.filter(p => p.known.has(a.agent)).length}/${n}`)
    const mem = await memory(procs)
    out(`\nconverged in ${Math.round(convergedMs)} ms: every peer knows all ${total} agents (memory: ${mem.totalMiB} MiB in ${procs.length} process${procs.length > 1 ? 'es' : ''}, ${mem.perPeerMiB} MiB per peer)`)
    out(table(AGENT_HEADERS.concat('SEEN BY'), agentRows(agents, Date.now()).map((row, i) => [...row, seenBy[i]!])))
    out(`\n${table(['PEER', 'ID', 'KNOWS'], perPeer.map(p => [String(p.peer), shortId(p.peerId), `${p.known}/${total}`]))}`)
    if (values.demo === true && !json) {
      out(`\nrunning the demo task (${DEMO_TASK}) from peer 0:`)
      const report = await submitTask(peers[0]!.ready!.apiPort, join(dataDir, 'peer-0'), await readFile(DEMO_TASK, 'utf8'))
      printReport(report)
    }
    if (untilConverged) return 0
    out('\nthe mesh is running — agentmesh agents --api-port <API> lists what a peer knows; Ctrl-C stops all peers')
    await watch(peers, procs, () => interrupted, out)
    return 0
  } catch (err) {
    if (interrupted) return 130
    throw err
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    if (!json) process.stdout.write(`stopping ${n} peer${n > 1 ? 's' : ''}… `)
    await stopAll()
    out('stopped')
  }
}

/** Fails with the ports that are taken, before any process starts. */
async function checkPortsFree (basePort: number, n: number): Promise<void> {
  const ports = Array.from({ length: n }, (_, i) => [basePort + i, basePort + API_PORT_OFFSET + i]).flat()
  const taken: number[] = []
  for (const port of ports) if (!await portFree(port)) taken.push(port)
  if (taken.length > 0) {
    throw new UsageError(`up: port${taken.length > 1 ? 's' : ''} ${taken.join(', ')} on 127.0.0.1 ${taken.length > 1 ? 'are' : 'is'} in use — pick another range with --base-port (it uses P..P+${n - 1} and P+${API_PORT_OFFSET}..P+${API_PORT_OFFSET + n - 1}), or stop what holds them`)
  }
}

function portFree (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** Messages about one peer: tagged with its index, or untagged from a process hosting only it. */
function onMessage (peer: PeerProcess, handler: (m: ChildMessage) => void): () => void {
  const listener = (m: ChildMessage): void => {
    if (m.type === 'usage') return
    if ((m.peer ?? peer.proc.peers[0]) === peer.index) handler(m)
  }
  peer.proc.child.on('message', listener)
  return () => peer.proc.child.off('message', listener)
}

/**
 * Resolves when every peer has said "ready". Fails when one cannot start (it says why, or its
 * process exits) or when no process has said anything for STALL_MS: on a loaded machine starting
 * takes as long as it takes, as long as something is happening.
 */
function waitReady (peers: PeerProcess[], procs: MeshProcess[], interrupted: () => boolean): Promise<void> {
  for (const peer of peers) onMessage(peer, m => { if (m.type === 'state') peer.known = new Set(m.agents) }) // from here on
  return new Promise((resolve, reject) => {
    const offs: Array<() => void> = []
    const cleanup = (): void => { offs.forEach(off => off()); clearInterval(watchdog) }
    const fail = (peer: PeerProcess, why: string): void => { cleanup(); reject(new UsageError(`peer ${peer.index} (port ${peer.port}) did not start: ${why}`)) }
    let waiting = peers.length
    for (const peer of peers) {
      offs.push(onMessage(peer, m => {
        if (m.type === 'ready' && peer.ready === undefined) {
          peer.ready = m
          if (--waiting === 0) { cleanup(); resolve() }
        }
        if (m.type === 'fatal') fail(peer, m.message)
      }))
    }
    for (const proc of procs) {
      const onExit = (code: number | null): void => {
        const peer = peers[proc.peers.find(i => peers[i]!.ready === undefined) ?? proc.peers[0]!]!
        fail(peer, interrupted() ? 'interrupted' : `its process exited with code ${code}${proc.stderr !== '' ? `:\n${proc.stderr.trim()}` : ''}`)
      }
      proc.child.once('exit', onExit)
      offs.push(() => proc.child.off('exit', onExit))
    }
    const watchdog = setInterval(() => {
      const last = Math.max(...procs.map(p => p.heardAt))
      if (performance.now() - last < STALL_MS) return
      const stuck = peers.find(p => p.ready === undefined)!
      fail(stuck, `no peer process said anything for ${STALL_MS / 1000} s`)
    }, 1000)
  })
}

/** Each peer dials its ring targets (see ringTargets). */
async function connect (peers: PeerProcess[]): Promise<void> {
  const n = peers.length
  await Promise.all(peers.map(async (p, i) => {
    const addrs = ringTargets(i, n, n > SOLO_LIMIT ? 3 : 2).map(j => peers[j]!.ready!.multiaddrs[0]!) // libp2p's addresses end in /p2p/<id>
    if (addrs.length === 0) return
    const { failures } = await request(p, { type: 'dial', peer: p.index, addrs, keepAlive: true }, 'dialed')
    for (const f of failures) console.error(`peer ${i} could not dial ${f.addr}: ${f.error}`)
    if (failures.length === addrs.length) throw new UsageError(`up: peer ${i} could not reach any other peer, so the mesh cannot form — see the errors above`)
  }))
}

function request<T extends ChildMessage['type']> (peer: PeerProcess, message: ParentMessage, reply: T): Promise<Extract<ChildMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const off = onMessage(peer, m => { if (m.type === reply) { off(); peer.proc.child.off('exit', onExit); resolve(m as Extract<ChildMessage, { type: T }>) } })
    const onExit = (): void => { off(); reject(new Error(`peer ${peer.index} exited`)) }
    peer.proc.child.once('exit', onExit)
    peer.proc.child.send(message)
  })
}

async function listAgents (peer: PeerProcess): Promise<Extract<ChildMessage, { type: 'list' }>['agents']> {
  return (await request(peer, { type: 'list', peer: peer.index }, 'list')).agents
}

/** Resident memory of the mesh's processes (each reports its own), in MiB. */
async function memory (procs: MeshProcess[]): Promise<{ totalMiB: number, perPeerMiB: number, perProcessMiB: number[] }> {
  const rss = await Promise.all(procs.map(proc => new Promise<number>(resolve => {
    if (proc.exited || !proc.child.connected) { resolve(0); return }
    // A process too busy to answer within 5 s counts as 0 rather than hold up the report.
    const timer = setTimeout(() => { proc.child.off('message', on); resolve(0) }, 5000)
    const on = (m: ChildMessage): void => { if (m.type === 'usage') { clearTimeout(timer); proc.child.off('message', on); resolve(m.rssBytes) } }
    proc.child.on('message', on)
    proc.child.send({ type: 'usage' } satisfies ParentMessage)
  })))
  const mib = (b: number): number => Math.round(b / 2 ** 20)
  const total = rss.reduce((a, b) => a + b, 0)
  return { totalMiB: mib(total), perPeerMiB: mib(total / procs.reduce((sum, p) => sum + p.peers.length, 0)), perProcessMiB: rss.map(mib) }
}

function isConverged (peers: PeerProcess[], total: number): boolean {
  const reference = peers[0]!.known
  return peers.every(p => p.known.size === total && [...p.known].every(a => reference.has(a)))
}

function waitConverged (peers: PeerProcess[], total: number, timeoutMs: number, interrupted: () => boolean): Promise<boolean> {
  return new Promise(resolve => {
    const offs: Array<() => void> = []
    const done = (value: boolean): void => { clearTimeout(timer); clearInterval(poll); offs.forEach(off => off()); resolve(value) }
    const check = (): void => { if (isConverged(peers, total)) done(true) }
    for (const p of peers) offs.push(onMessage(p, m => { if (m.type === 'state') check() }))
    const timer = setTimeout(() => done(false), timeoutMs)
    const poll = setInterval(() => { if (interrupted() || peers.some(p => p.proc.exited)) done(false) }, 50)
    check()
  })
}

/**
 * Runs until Ctrl-C, saying when a peer dies or the live peers stop or start agreeing. A dead
 * peer's agents leave the mesh when they expire, so agreement is over the live peers' agents.
 */
async function watch (peers: PeerProcess[], procs: MeshProcess[], interrupted: () => boolean, out: (s: string) => void): Promise<void> {
  let agreed = true
  const live = (): PeerProcess[] => peers.filter(q => !q.proc.exited)
  const liveTotal = (): number => live().reduce((sum, q) => sum + q.ready!.localAgents, 0)
  for (const proc of procs) {
    const who = proc.peers.length === 1 ? `peer ${proc.peers[0]}` : `the process of peers ${proc.peers[0]}-${proc.peers.at(-1)}`
    proc.child.once('exit', code => { if (!interrupted()) out(`${who} exited (code ${code})${proc.stderr !== '' ? `: ${proc.stderr.trim()}` : ''}`) })
  }
  for (const p of peers) {
    onMessage(p, m => {
      if (m.type !== 'state') return
      const now = isConverged(live(), liveTotal())
      if (now !== agreed) out(now ? `the ${live().length} live peers agree again on ${liveTotal()} agents` : `peer ${p.index} knows ${m.agents.length} agents; the live peers host ${liveTotal()}`)
      agreed = now
    })
  }
  await new Promise<void>(resolve => { const t = setInterval(() => { if (interrupted()) { clearInterval(t); resolve() } }, 100) })
}

/** Asks a process to stop its peers, then insists: SIGKILL after 5 s (and 0.5 s per peer past the first). */
async function stopProcess (proc: MeshProcess): Promise<void> {
  if (proc.exited || proc.child.exitCode !== null) return
  const exited = new Promise<void>(resolve => proc.child.once('exit', () => resolve()))
  if (proc.child.connected) proc.child.send({ type: 'stop' } satisfies ParentMessage)
  else proc.child.kill('SIGTERM')
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 5000 + 500 * (proc.peers.length - 1))
  await exited
  clearTimeout(timer)
}
