/**
 * The lab's agentmesh processes: real `agentmesh node`/`join` processes inside lab namespaces,
 * followed through their `--json` event lines (each stamped when the lab read it), and one-shot
 * CLI commands (`submit`, `peers`) run inside a namespace, where the peer's API is on 127.0.0.1.
 */
import type { ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import type { Host, Lab } from './topology.ts'

export const CLI = fileURLToPath(new URL('../../bin/agentmesh.js', import.meta.url))
/** Every lab process serves its API here, inside its own namespace. */
export const LAB_API_PORT = 8100

export type LabEvent = Record<string, unknown> & { event: string, at: number }

const STDERR_LINES = 30

export class LabProcess {
  readonly events: LabEvent[] = []
  readonly stderr: string[] = []
  readonly exited: Promise<number | null>
  private readonly waiters = new Set<() => void>()
  private readonly child: ChildProcess
  readonly name: string
  readonly host: Host
  /** The LAN index (1-based) of a peer behind NAT, 0 for a seed. */
  readonly lan: number
  /** Its API port inside its namespace (from `--api-port`). */
  readonly apiPort: number
  /** Its data directory (from `--data`): where the CLI finds its API token. */
  readonly dataDir: string | undefined

  /** `logDir`: keep everything it prints in `<logDir>/<name>.log` (stdout and stderr, stamped). */
  constructor (lab: Lab, name: string, host: Host, lan: number, args: string[], logDir?: string) {
    this.name = name
    this.host = host
    this.lan = lan
    const port = args.indexOf('--api-port')
    this.apiPort = port >= 0 ? Number(args[port + 1]) : LAB_API_PORT
    const data = args.indexOf('--data')
    this.dataDir = data >= 0 ? args[data + 1] : undefined
    this.child = lab.spawn(host, process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    const log: WriteStream | undefined = logDir !== undefined ? createWriteStream(join(logDir, `${name}.log`), { flags: 'a' }) : undefined
    if (log !== undefined) {
      log.write(`${new Date().toISOString()} started: agentmesh ${args.join(' ')}\n`)
      this.child.once('exit', () => { log.end() })
    }
    const keep = (stream: string, line: string): void => { log?.write(`${new Date().toISOString()} ${stream} ${line}\n`) }
    createInterface({ input: this.child.stdout! }).on('line', line => {
      keep('out', line)
      let parsed: unknown
      try { parsed = JSON.parse(line) } catch { return }
      if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { event?: unknown }).event !== 'string') return
      this.events.push({ ...(parsed as { event: string }), at: Date.now() })
      this.wake()
    })
    createInterface({ input: this.child.stderr! }).on('line', line => {
      keep('err', line)
      this.stderr.push(line)
      if (this.stderr.length > STDERR_LINES) this.stderr.shift()
    })
    this.exited = new Promise(resolve => {
      this.child.once('exit', code => { this.wake(); resolve(code) })
      this.child.once('error', () => { this.wake(); resolve(null) })
    })
  }

  get running (): boolean { return this.child.exitCode === null && this.child.signalCode === null }

  get peerId (): string | undefined {
    return this.events.find(e => e.event === 'ready')?.peerId as string | undefined
  }

  private wake (): void { for (const w of [...this.waiters]) w() }

  /** The first event (already seen or still to come) matching `pred`; undefined past the deadline or if the process ends. */
  async waitFor (pred: (e: LabEvent) => boolean, deadline: number): Promise<LabEvent | undefined> {
    for (;;) {
      const hit = this.events.find(pred)
      if (hit !== undefined) return hit
      if (!this.running || Date.now() >= deadline) return undefined
      await new Promise<void>(resolve => {
        const done = (): void => { clearTimeout(timer); this.waiters.delete(done); resolve() }
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()))
        this.waiters.add(done)
      })
    }
  }

  /** Sends `signal` to it (SIGHUP: re-read its agents file). */
  signal (signal: NodeJS.Signals): void {
    if (!this.running || this.child.pid === undefined) return
    try { process.kill(-this.child.pid, signal) } catch { this.child.kill(signal) }
  }

  /** Stops it: SIGTERM for a clean stop, SIGKILL to play a crashed host. */
  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.running && this.child.pid !== undefined) {
      try { process.kill(-this.child.pid, signal) } catch { this.child.kill(signal) }
    }
    await this.exited
  }

  /** Why it did not do what was expected: its last lines on stderr. */
  tail (): string { return this.stderr.slice(-5).join('\n') }
}

/** `--api-port P --data DIR`: the CLI options that reach this process's API with its token. */
export function apiArgs (p: LabProcess): string[] {
  return ['--api-port', String(p.apiPort), ...(p.dataDir !== undefined ? ['--data', p.dataDir] : [])]
}

/** Runs `agentmesh <args>` inside `host` and resolves with its exit code and stdout (never rejects on a non-zero exit). */
export async function cliIn (lab: Lab, host: Host, args: string[], timeoutMs = 120_000): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = lab.spawn(host, process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 8192) stderr += d })
  const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch { /* gone */ } }, timeoutMs)
  const code = await new Promise<number | null>(resolve => {
    child.once('exit', c => { resolve(c) })
    child.once('error', () => { resolve(null) })
  })
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** `agentmesh <args> --json` inside `host`, parsed; throws with the command's own error when it printed none. */
export async function cliJson<T> (lab: Lab, host: Host, args: string[], timeoutMs?: number): Promise<T> {
  const r = await cliIn(lab, host, [...args, '--json'], timeoutMs)
  try {
    return JSON.parse(r.stdout) as T
  } catch {
    throw new Error(`agentmesh ${args[0]} in ${host.ns} exited ${r.code}: ${(r.stderr.trim().split('\n').at(-1) ?? '') || 'no output'}`)
  }
}

/** GET `path` from the API on 127.0.0.1:`port` inside `host` (where only that namespace reaches it); the parsed JSON body. */
export async function apiGetIn<T> (lab: Lab, host: Host, port: number, path: string, timeoutMs = 30_000): Promise<T> {
  const script = 'fetch(process.argv[1], { signal: AbortSignal.timeout(10000) }).then(async r => { process.stdout.write(await r.text()); process.exitCode = r.ok ? 0 : 1 }, e => { process.stderr.write(String(e)); process.exitCode = 2 })'
  const child = lab.spawn(host, process.execPath, ['-e', script, `http://127.0.0.1:${port}${path}`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d })
  const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch { /* gone */ } }, timeoutMs)
  const code = await new Promise<number | null>(resolve => { child.once('exit', resolve); child.once('error', () => { resolve(null) }) })
  clearTimeout(timer)
  if (code !== 0) throw new Error(`GET ${path} in ${host.ns}: ${err.trim() || out.trim() || `exit ${code}`}`)
  return JSON.parse(out) as T
}
