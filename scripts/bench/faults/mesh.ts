/**
 * Real peers for the fault bench: each an `agentmesh node --json` process in its own process
 * group, with fixed ports and data directory so it can be killed and started again as the same
 * peer. Every stdout line is kept (JSON objects with an `event` field) per run.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../../test/helpers/ports.ts'
import type { SlowLlm } from './slow-llm.ts'

const BIN = fileURLToPath(new URL('../../../bin/agentmesh.js', import.meta.url))
export type Line = Record<string, unknown>

export interface MeshPeer {
  index: number
  dir: string
  port: number
  apiPort: number
  peerId: string
  child?: ChildProcess | undefined
  /** stdout lines of each run, the current run last. */
  runs: Line[][]
  stderr: string
  token: string
}

/** Every process group we started: killed on any exit of this process. */
const groups = new Set<number>()
let hooked = false
function hookExit (cleanup: () => void): void {
  if (hooked) return
  hooked = true
  process.on('exit', cleanup)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => { cleanup(); process.exit(130) })
}

export class Mesh {
  readonly peers: MeshPeer[] = []
  readonly home = mkdtempSync(join(tmpdir(), 'agentmesh-faults-'))
  readonly llm: SlowLlm

  constructor (llm: SlowLlm) {
    this.llm = llm
    hookExit(() => { this.#killAll(); rmSync(this.home, { recursive: true, force: true }) })
  }

  /** Peer 0 is the requester (no slow agent, so work always leaves it); the others host calc + slow. */
  async start (size: number): Promise<void> {
    for (let i = 0; i < size; i++) {
      const dir = join(this.home, `peer-${i}`)
      const slow = i === 0 ? '' : `  - kind: llm\n    name: slow\n    description: echoes a prompt slowly, like a language model\n    skills: [slow-echo]\n    capacity: 16\n    llm: { url: "${this.llm.url(i)}", model: fake, timeoutMs: 120000 }\n`
      writeFileSync(join(this.home, `agents-${i}.yaml`), `agents:\n  - kind: arithmetic\n    name: calc\n${slow}`)
      const p: MeshPeer = { index: i, dir, port: 0, apiPort: 0, peerId: '', runs: [], stderr: '', token: '' }
      this.peers.push(p)
      // A free port may be taken before the peer binds it: pick again.
      for (let attempt = 1; ; attempt++) {
        p.port = await freePort()
        p.apiPort = await freePort()
        try { await this.run(p); break } catch (err) { if (attempt >= 4 || !/in use/.test((err as Error).message)) throw err }
      }
    }
  }

  addr (p: MeshPeer): string { return `/ip4/127.0.0.1/tcp/${p.port}/p2p/${p.peerId}` }
  alive (p: MeshPeer): boolean { return p.child !== undefined && p.child.exitCode === null && p.child.signalCode === null }
  lines (p: MeshPeer): Line[] { return p.runs.at(-1) ?? [] }

  /** Starts `p` (again) on its data dir and ports, dialling every live peer; resolves at its ready line. */
  async run (p: MeshPeer, timeoutMs = 90_000): Promise<Line> {
    const bootstrap = this.peers.filter(o => o !== p && this.alive(o)).map(o => this.addr(o))
    const args = [BIN, 'node', '--port', String(p.port), '--api-port', String(p.apiPort), '--data', p.dir, '--agents', join(this.home, `agents-${p.index}.yaml`), '--json', ...bootstrap.flatMap(b => ['--bootstrap', b])]
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AGENTMESH_HOME: join(this.home, `home-${p.index}`) } })
    groups.add(child.pid!)
    child.once('exit', () => groups.delete(child.pid!))
    p.child = child
    const lines: Line[] = []
    p.runs.push(lines)
    p.stderr = ''
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { p.stderr = (p.stderr + d).slice(-4000) })
    let buffer = ''
    const ready = new Promise<Line>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`peer ${p.index} not ready in ${timeoutMs} ms: ${p.stderr.slice(-500)}`)), timeoutMs)
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        buffer += d
        const parts = buffer.split('\n')
        buffer = parts.pop()!
        for (const l of parts) {
          if (l.trim() === '') continue
          let e: Line
          try { e = JSON.parse(l) as Line } catch { e = { event: '(not json)', text: l.slice(0, 300) } }
          lines.push(e)
          if (e.event === 'ready') { clearTimeout(timer); resolve(e) }
        }
      })
      child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`peer ${p.index} exited (${code ?? signal}) while starting: ${p.stderr.slice(0, 400)}`)) })
    })
    const line = await ready
    p.peerId = String(line.peerId)
    p.token = readFileSync(join(p.dir, 'api-token'), 'utf8').trim()
    return line
  }

  /** Sends `signal` to the peer's process group; resolves with ms until it exited (SIGKILL after `killAfterMs`). */
  async stop (p: MeshPeer, signal: NodeJS.Signals, killAfterMs = 30_000): Promise<{ exitMs: number, code: number | null, signal: string | null }> {
    const child = p.child
    if (child === undefined || !this.alive(p)) return { exitMs: 0, code: child?.exitCode ?? null, signal: child?.signalCode ?? null }
    const t0 = performance.now()
    const exited = new Promise<{ code: number | null, signal: string | null }>(resolve => child.once('exit', (code, sig) => resolve({ code, signal: sig })))
    // SIGTERM goes to the node process only (a graceful stop); SIGKILL to the whole group.
    if (signal === 'SIGKILL') process.kill(-child.pid!, 'SIGKILL')
    else child.kill(signal)
    const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} }, killAfterMs)
    const r = await exited
    clearTimeout(timer)
    return { exitMs: Math.round(performance.now() - t0), ...r }
  }

  async api (p: MeshPeer, method: string, path: string, body?: unknown, timeoutMs = 10_000): Promise<{ status: number, body: unknown }> {
    const res = await fetch(`http://127.0.0.1:${p.apiPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${p.token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs)
    })
    const text = await res.text()
    let parsed: unknown = text
    try { parsed = JSON.parse(text) } catch {}
    return { status: res.status, body: parsed }
  }

  async certificates (p: MeshPeer): Promise<Set<string>> {
    const r = await this.api(p, 'GET', '/certificates')
    return new Set(r.status === 200 ? r.body as string[] : [])
  }

  async close (): Promise<void> {
    await Promise.all(this.peers.map(async p => await this.stop(p, 'SIGTERM', 5000)))
    this.#killAll()
    rmSync(this.home, { recursive: true, force: true })
  }

  #killAll (): void {
    for (const g of groups) { try { process.kill(-g, 'SIGKILL') } catch {} }
    groups.clear()
  }
}

export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Polls `check` every 100 ms until it returns a value other than undefined, or the bound passes. */
export async function until<T> (check: () => Promise<T | undefined> | T | undefined, boundMs: number): Promise<T | undefined> {
  const end = Date.now() + boundMs
  for (;;) {
    let v: T | undefined
    try { v = await check() } catch {}
    if (v !== undefined) return v
    if (Date.now() > end) return undefined
    await sleep(100)
  }
}
