/**
 * The mesh under attack: 8 honest peers, each a real `agentmesh node` process (the same code path
 * `agentmesh up` forks, reporting over IPC) with its own data directory and API port, dialled into
 * a sparse ring (peer i dials i+1 and i+3, so every peer has 4 honest neighbours and any two are at
 * most 2 hops apart); and one rogue process. A crash of a peer is a process exit. Everything lives
 * under one temp directory and is stopped and deleted on `close()`, on error and on Ctrl-C.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { learnToken } from './api.ts'
import type { ChildMessage, ParentMessage } from '../../../node/cli/shared.ts'
import type { AttackReport, AttackName, AttackSettings, RogueCommand, RogueReply, Target } from './protocol.ts'
import { freePort } from '../../../test/helpers/ports.ts'

const BIN = fileURLToPath(new URL('../../../bin/agentmesh.js', import.meta.url))
const ROGUE = fileURLToPath(new URL('./rogue-process.ts', import.meta.url))
const DIAL_OFFSETS = [1, 3]

export interface HonestPeer extends Target {
  index: number
  child: ChildProcess
  /** Set when the process exited without being told to stop. */
  crashed?: { at: number, code: number | null, signal: string | null, stderr: string }
}

export interface Mesh {
  honest: HonestPeer[]
  rogue: { peerId: string, child: ChildProcess }
  attack (name: AttackName, durationMs: number, settings: AttackSettings): Promise<AttackReport>
  close (): Promise<void>
}

/** Every child of every mesh still running: killed if the harness exits or is interrupted. */
const live = new Set<ChildProcess>()
const dirs = new Set<string>()
let hooked = false

function cleanupOnExit (): void {
  if (hooked) return
  hooked = true
  const killAll = (): void => {
    for (const c of live) { try { c.kill('SIGKILL') } catch {} }
    for (const d of dirs) { try { rmSync(d, { recursive: true, force: true }) } catch {} }
  }
  process.on('exit', killAll)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => { process.stderr.write(`adversary: ${sig}, stopping every peer\n`); killAll(); process.exit(130) })
  }
}

/**
 * `idWorkBits` > 0: every peer joins through a network file that asks that much proof of work of
 * peer ids (still the local network, so topics and protocol ids are the usual ones).
 */
export async function startMesh (size: number, idWorkBits = 0): Promise<Mesh> {
  cleanupOnExit()
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-adversary-'))
  dirs.add(dir)
  const networkFile = join(dir, 'network.yaml')
  writeFileSync(networkFile, `name: local\nprivateAddresses: true\nidWorkBits: ${idWorkBits}\n`)
  const honest: HonestPeer[] = []
  let rogueChild: ChildProcess | undefined
  let closing = false
  const close = async (): Promise<void> => {
    closing = true
    const children = [...honest.map(h => h.child), ...rogueChild === undefined ? [] : [rogueChild]]
    await Promise.all(children.map(async c => await stopChild(c)))
    rmSync(dir, { recursive: true, force: true })
    dirs.delete(dir)
  }
  try {
    const started = await Promise.all(Array.from({ length: size }, async (_, i) => await startHonest(i, join(dir, `peer-${i}`), networkFile, () => closing)))
    honest.push(...started)
    await Promise.all(honest.map(async (h, i) => {
      // Fewer than 4 peers: an offset can wrap onto the peer itself or repeat another.
      const addrs = [...new Set(DIAL_OFFSETS.map(d => (i + d) % size))].filter(j => j !== i).map(j => honest[j]!.multiaddr)
      const failures = await askHonest(h, { type: 'dial', addrs })
      if (failures.length > 0) throw new Error(`peer ${i} could not dial: ${failures.map(f => f.error).join('; ')}`)
    }))
    const rogue = await startRogueProcess(join(dir, 'rogue'), networkFile)
    rogueChild = rogue.child
    // A determined attacker connects to everyone it can.
    const failures = await askRogue(rogue.child, { type: 'dial', addrs: honest.map(h => h.multiaddr) }, 'dialed')
    if (failures.type === 'dialed' && failures.failures.length > 0) throw new Error(`rogue could not dial: ${failures.failures.map(f => f.error).join('; ')}`)
    return {
      honest,
      rogue: { peerId: rogue.peerId, child: rogue.child },
      async attack (name, durationMs, settings) {
        const targets = honest.map(({ peerId, multiaddr, apiPort }) => ({ peerId, multiaddr, apiPort }))
        const reply = await askRogue(rogue.child, { type: 'attack', attack: name, durationMs, targets, settings }, 'attacked', durationMs + 120_000)
        if (reply.type !== 'attacked') throw new Error('rogue did not report its attack')
        return reply.report
      },
      close
    }
  } catch (err) {
    await close()
    throw err
  }
}

/** A free port can be taken by another peer's listener before ours binds it: try a few ports. */
async function startHonest (index: number, dataDir: string, networkFile: string, closing: () => boolean): Promise<HonestPeer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startHonestOnce(index, dataDir, networkFile, closing)
    } catch (err) {
      if (attempt >= 5 || !/already in use/.test((err as Error).message)) throw err
    }
  }
}

async function startHonestOnce (index: number, dataDir: string, networkFile: string, closing: () => boolean): Promise<HonestPeer> {
  // --api-port 0 means "no API", so pick a free port here.
  const args = ['node', '--child', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', String(await freePort()), '--data', dataDir, '--network', networkFile]
  // ADVERSARY_NODE_ARGS: extra Node flags for the honest peers, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'.
  const execArgv = [...process.execArgv, ...(process.env.ADVERSARY_NODE_ARGS ?? '').split(' ').filter(Boolean)]
  const child = fork(BIN, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, AGENTMESH_HOME: dataDir }, execArgv })
  live.add(child)
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000) })
  const ready = await new Promise<Extract<ChildMessage, { type: 'ready' }>>((resolve, reject) => {
    // Minting an identity with proof of work may take a while on a busy machine.
    const timer = setTimeout(() => reject(new Error(`honest peer ${index} did not start within 180 s: ${stderr}`)), 180_000)
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') { clearTimeout(timer); resolve(m) }
      if (m.type === 'fatal') { clearTimeout(timer); reject(new Error(`honest peer ${index}: ${m.message}`)) }
    })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`honest peer ${index} exited (${code}) while starting: ${stderr}`)) })
  })
  learnToken(ready.apiPort, dataDir)
  const peer: HonestPeer = { index, child, peerId: ready.peerId, multiaddr: ready.multiaddrs.find(a => a.includes('/tcp/')) ?? ready.multiaddrs[0]!, apiPort: ready.apiPort }
  child.once('exit', (code, signal) => {
    live.delete(child)
    if (!closing()) peer.crashed = { at: Date.now(), code, signal, stderr: crashLine(stderr) }
  })
  return peer
}

/** The line of a dying process's stderr that names the error (else its last line). */
function crashLine (stderr: string): string {
  const lines = stderr.trim().split('\n')
  return (lines.find(l => /^\w*Error\b|Error:/.test(l)) ?? lines.at(-1) ?? '').trim().slice(0, 200)
}


async function askHonest (h: HonestPeer, m: ParentMessage): Promise<Array<{ addr: string, error: string }>> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`peer ${h.index} did not answer ${m.type}`)), 30_000)
    const on = (reply: ChildMessage): void => {
      if (reply.type !== 'dialed') return
      clearTimeout(timer)
      h.child.off('message', on)
      resolve(reply.failures)
    }
    h.child.on('message', on)
    h.child.send(m)
  })
}

async function startRogueProcess (dataDir: string, networkFile: string): Promise<{ child: ChildProcess, peerId: string }> {
  const child = fork(ROGUE, [dataDir, networkFile], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  live.add(child)
  child.once('exit', () => live.delete(child))
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000) })
  const ready = await new Promise<RogueReply>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`rogue did not start: ${stderr}`)), 180_000)
    child.once('message', (m: RogueReply) => { clearTimeout(timer); resolve(m) })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`rogue exited (${code}): ${stderr}`)) })
  })
  if (ready.type !== 'ready') throw new Error(`rogue failed to start: ${ready.type === 'fatal' ? ready.message : ready.type}`)
  return { child, peerId: ready.peerId }
}

async function askRogue (child: ChildProcess, m: RogueCommand, want: RogueReply['type'], timeoutMs = 30_000): Promise<RogueReply> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.off('message', on); reject(new Error(`rogue did not answer ${m.type}`)) }, timeoutMs)
    const on = (reply: RogueReply): void => {
      if (reply.type !== want) return
      clearTimeout(timer)
      child.off('message', on)
      resolve(reply)
    }
    child.on('message', on)
    child.send(m)
  })
}

/** Asks a child to stop (IPC, then SIGTERM) and kills it if it has not exited in 5 s. */
async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) { live.delete(child); return }
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  try { child.send({ type: 'stop' }) } catch { child.kill('SIGTERM') }
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
  live.delete(child)
}
