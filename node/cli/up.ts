/**
 * `agentmesh up --peers N`: N local peers as separate processes, connected to each other. Prints
 * who they are and the agents every peer sees; Ctrl-C stops them all and leaves none behind.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
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

export const upHelp = `agentmesh up --peers N [--agents FILE] [--base-port P] [--data DIR] [--ttl SECONDS]
             [--until-converged] [--json] [--timeout SECONDS] [--demo] [--policy NAME]

Starts N peers (1-200) as separate processes on 127.0.0.1: peer i listens on P+i (default
P=${DEFAULT_PORT}) with its API on P+${API_PORT_OFFSET}+i, keeps its identity in DIR/peer-i (default
~/.agentmesh/up) and hosts the agents of FILE (default: the six demo agents).
--until-converged exits once every peer knows every agent (exit 1 after --timeout, default 60 s);
with --json it prints one JSON object: peers, agents, convergedMs, perPeer, …
--demo runs node/agents/demo-task.yaml through the mesh once it has converged (npm start does).`

const BIN = fileURLToPath(new URL('../../bin/agentmesh.js', import.meta.url))
const DEMO_TASK = fileURLToPath(new URL('../agents/demo-task.yaml', import.meta.url))

interface PeerProcess {
  index: number
  child: ChildProcess
  port: number
  ready?: Extract<ChildMessage, { type: 'ready' }>
  known: Set<string>
  /** When this peer first knew every agent, ms after dialing began. */
  completeMs?: number
  stderr: string
  exited: boolean
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
    policy: { type: 'string' }
  })
  if (values.peers === undefined) throw new UsageError('up: say how many peers, e.g. agentmesh up --peers 5')
  const n = integer('up', 'peers', values.peers, 5, 1, 200)
  const basePort = integer('up', 'base-port', values['base-port'], DEFAULT_PORT, 1024, 65535 - API_PORT_OFFSET - n)
  const ttl = integer('up', 'ttl', values.ttl, 60, 2, 86_400)
  const timeoutMs = integer('up', 'timeout', values.timeout, 60, 1, 3600) * 1000
  const untilConverged = values['until-converged'] === true
  const json = values.json === true
  if (values.agents !== undefined) loadAgentsFile(values.agents) // fail here, once, before any process starts
  if (values.policy !== undefined && !isPolicyName(values.policy)) throw new UsageError(`up: unknown routing policy "${values.policy}" — use one of ${POLICY_NAMES.join(', ')}`)
  const dataDir = values.data ?? join(defaultDataDir(), 'up')
  await checkPortsFree(basePort, n)

  const out = (text: string): void => { if (!json) console.log(text) }
  const started = performance.now()
  const peers: PeerProcess[] = []
  for (let i = 0; i < n; i++) {
    const args = ['node', '--child', '--port', String(basePort + i), '--api-port', String(basePort + API_PORT_OFFSET + i),
      '--data', join(dataDir, `peer-${i}`), '--ttl', String(ttl)]
    if (values.agents !== undefined) args.push('--agents', values.agents)
    if (values.policy !== undefined) args.push('--policy', values.policy)
    const child = fork(BIN, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    const peer: PeerProcess = { index: i, child, port: basePort + i, known: new Set(), stderr: '', exited: false }
    child.stderr?.on('data', (d: Buffer) => { peer.stderr = (peer.stderr + d.toString()).slice(-4000) })
    child.on('exit', () => { peer.exited = true })
    peers.push(peer)
  }
  const stopAll = async (): Promise<void> => { await Promise.all(peers.map(stopPeer)) }
  let interrupted = false
  const onSignal = (): void => { interrupted = true }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    await Promise.all(peers.map(p => waitReady(p, () => interrupted)))
    const readyMs = performance.now() - started
    if (!json) {
      out(`started ${n} peer${n > 1 ? 's' : ''} in ${Math.round(readyMs)} ms`)
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
      console.log(JSON.stringify({ peers: n, agents: total, converged: true, convergedMs: Math.round(convergedMs), startupMs: Math.round(readyMs), wallMs: Math.round(performance.now() - started), perPeer }))
      return 0
    }
    const agents = sortAgents(await listAgents(peers[0]!))
    const seenBy = agents.map(a => `${peers.filter(p => p.known.has(a.agent)).length}/${n}`)
    out(`\nconverged in ${Math.round(convergedMs)} ms: every peer knows all ${total} agents`)
    out(table(AGENT_HEADERS.concat('SEEN BY'), agentRows(agents, Date.now()).map((row, i) => [...row, seenBy[i]!])))
    out(`\n${table(['PEER', 'ID', 'KNOWS'], perPeer.map(p => [String(p.peer), shortId(p.peerId), `${p.known}/${total}`]))}`)
    if (values.demo === true && !json) {
      out(`\nrunning the demo task (${DEMO_TASK}) from peer 0:`)
      const report = await submitTask(peers[0]!.ready!.apiPort, join(dataDir, 'peer-0'), await readFile(DEMO_TASK, 'utf8'))
      printReport(report)
    }
    if (untilConverged) return 0
    out('\nthe mesh is running — agentmesh agents --api-port <API> lists what a peer knows; Ctrl-C stops all peers')
    await watch(peers, () => interrupted, out)
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

function onMessage (peer: PeerProcess, handler: (m: ChildMessage) => void): () => void {
  const listener = (m: ChildMessage): void => handler(m)
  peer.child.on('message', listener)
  return () => peer.child.off('message', listener)
}

function waitReady (peer: PeerProcess, interrupted: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (why: string): void => { cleanup(); reject(new UsageError(`peer ${peer.index} (port ${peer.port}) did not start: ${why}`)) }
    const off = onMessage(peer, m => {
      if (m.type === 'ready') { peer.ready = m; cleanup(); resolve() }
      if (m.type === 'fatal') fail(m.message)
    })
    const onExit = (code: number | null): void => fail(interrupted() ? 'interrupted' : `it exited with code ${code}${peer.stderr !== '' ? `:\n${peer.stderr.trim()}` : ''}`)
    const timer = setTimeout(() => fail('no answer within 30 s'), 30_000)
    peer.child.once('exit', onExit)
    const cleanup = (): void => { off(); clearTimeout(timer); peer.child.off('exit', onExit) }
    // Every peer reports what it knows from here on.
    onMessage(peer, m => { if (m.type === 'state') peer.known = new Set(m.agents) })
  })
}

/** Each peer dials its ring targets (see ringTargets). */
async function connect (peers: PeerProcess[]): Promise<void> {
  const n = peers.length
  await Promise.all(peers.map(async (p, i) => {
    const addrs = ringTargets(i, n).map(j => peers[j]!.ready!.multiaddrs[0]!) // libp2p's addresses end in /p2p/<id>
    if (addrs.length === 0) return
    const { failures } = await request(p, { type: 'dial', addrs }, 'dialed')
    for (const f of failures) console.error(`peer ${i} could not dial ${f.addr}: ${f.error}`)
    if (failures.length === addrs.length) throw new UsageError(`up: peer ${i} could not reach any other peer, so the mesh cannot form — see the errors above`)
  }))
}

function request<T extends ChildMessage['type']> (peer: PeerProcess, message: ParentMessage, reply: T): Promise<Extract<ChildMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const off = onMessage(peer, m => { if (m.type === reply) { off(); peer.child.off('exit', onExit); resolve(m as Extract<ChildMessage, { type: T }>) } })
    const onExit = (): void => { off(); reject(new Error(`peer ${peer.index} exited`)) }
    peer.child.once('exit', onExit)
    peer.child.send(message)
  })
}

async function listAgents (peer: PeerProcess): Promise<Extract<ChildMessage, { type: 'list' }>['agents']> {
  return (await request(peer, { type: 'list' }, 'list')).agents
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
    const poll = setInterval(() => { if (interrupted() || peers.some(p => p.exited)) done(false) }, 50)
    check()
  })
}

/**
 * Runs until Ctrl-C, saying when a peer dies or the live peers stop or start agreeing. A dead
 * peer's agents leave the mesh when they expire, so agreement is over the live peers' agents.
 */
async function watch (peers: PeerProcess[], interrupted: () => boolean, out: (s: string) => void): Promise<void> {
  let agreed = true
  const live = (): PeerProcess[] => peers.filter(q => !q.exited)
  const liveTotal = (): number => live().reduce((sum, q) => sum + q.ready!.localAgents, 0)
  for (const p of peers) {
    p.child.once('exit', code => { if (!interrupted()) out(`peer ${p.index} exited (code ${code})${p.stderr !== '' ? `: ${p.stderr.trim()}` : ''}`) })
    onMessage(p, m => {
      if (m.type !== 'state') return
      const now = isConverged(live(), liveTotal())
      if (now !== agreed) out(now ? `the ${live().length} live peers agree again on ${liveTotal()} agents` : `peer ${p.index} knows ${m.agents.length} agents; the live peers host ${liveTotal()}`)
      agreed = now
    })
  }
  await new Promise<void>(resolve => { const t = setInterval(() => { if (interrupted()) { clearInterval(t); resolve() } }, 100) })
}

/** Asks a peer to stop, then insists: SIGKILL after 5 s. */
async function stopPeer (peer: PeerProcess): Promise<void> {
  if (peer.exited || peer.child.exitCode !== null) return
  const exited = new Promise<void>(resolve => peer.child.once('exit', () => resolve()))
  if (peer.child.connected) peer.child.send({ type: 'stop' } satisfies ParentMessage)
  else peer.child.kill('SIGTERM')
  const timer = setTimeout(() => peer.child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}
