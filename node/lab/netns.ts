/**
 * Primitives for the network lab: run a command (argument arrays only, never a shell), list, create
 * and delete network namespaces, kill what runs inside them. Everything the lab makes lives inside
 * namespaces it created; nothing here touches the root namespace's links, routes or firewall.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Fixed start of every lab namespace name; `sweepStale` only ever looks at names that start with it. */
export const PREFIX_ROOT = 'amlab'

export class CommandError extends Error {
  readonly cmd: string
  readonly args: readonly string[]
  readonly code: number | string | null
  readonly stderr: string
  constructor (cmd: string, args: readonly string[], code: number | string | null, stderr: string) {
    super(`${cmd} ${args.join(' ')} failed (${String(code)}): ${stderr.trim()}`)
    this.cmd = cmd
    this.args = args
    this.code = code
    this.stderr = stderr
  }
}

/** Runs `cmd args` (no shell), optionally feeding `input` on stdin; resolves with stdout. */
export async function run (cmd: string, args: readonly string[], opts: { input?: string } = {}): Promise<string> {
  return await new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout)
      else reject(new CommandError(cmd, args, (err as NodeJS.ErrnoException).code ?? null, stderr || err.message))
    })
    if (opts.input !== undefined) child.stdin?.end(opts.input)
    else child.stdin?.end()
  })
}

/** `ip` inside namespace `ns` (`ip -n NS ...`): no process has to enter the namespace. */
export const ipIn = async (ns: string, args: readonly string[]): Promise<string> => await run('ip', ['-n', ns, ...args])

/** Runs a command inside namespace `ns` (`ip netns exec NS cmd args`). */
export const execIn = async (ns: string, cmd: string, args: readonly string[], opts: { input?: string } = {}): Promise<string> =>
  await run('ip', ['netns', 'exec', ns, cmd, ...args], opts)

/** Names of all network namespaces (`ip netns list` prints "name (id: N)" or just "name"). */
export async function listNamespaces (): Promise<string[]> {
  return parseList(await run('ip', ['netns', 'list']))
}

function parseList (out: string): string[] {
  return out.split('\n').map(l => l.trim().split(/\s+/)[0] ?? '').filter(n => n !== '')
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}$/

/** Creates namespace `name` with its loopback up. */
export async function addNamespace (name: string): Promise<void> {
  if (!NAME.test(name)) throw new Error(`bad namespace name ${JSON.stringify(name)}`)
  await run('ip', ['netns', 'add', name])
  await ipIn(name, ['link', 'set', 'lo', 'up'])
}

/** Pids of the processes inside namespace `name` (empty if it is gone). */
export async function pidsIn (name: string): Promise<number[]> {
  try {
    return (await run('ip', ['netns', 'pids', name])).split('\n').map(Number).filter(p => Number.isInteger(p) && p > 0)
  } catch {
    return []
  }
}

function killQuietly (pid: number, signal: NodeJS.Signals): void {
  try { process.kill(pid, signal) } catch { /* already gone */ }
}

/**
 * Kills every process left inside namespace `name` and deletes it; its veths and bridges go with
 * it. A missing namespace is not an error.
 */
export async function deleteNamespace (name: string): Promise<void> {
  for (const pid of await pidsIn(name)) if (pid !== process.pid) killQuietly(pid, 'SIGKILL')
  try {
    await run('ip', ['netns', 'del', name])
  } catch (err) {
    if (!(await listNamespaces()).includes(name)) return
    throw err
  }
}

/** Synchronous `deleteNamespace`, for the process 'exit' event where nothing asynchronous runs. */
export function deleteNamespaceSync (name: string): void {
  const opts = { stdio: ['ignore', 'pipe', 'ignore'] as ['ignore', 'pipe', 'ignore'], encoding: 'utf8' as const }
  try {
    const pids = execFileSync('ip', ['netns', 'pids', name], opts).split('\n').map(Number).filter(p => Number.isInteger(p) && p > 0)
    for (const pid of pids) if (pid !== process.pid) killQuietly(pid, 'SIGKILL')
  } catch { /* gone */ }
  try { execFileSync('ip', ['netns', 'del', name], opts) } catch { /* gone */ }
}

/** Whether process `pid` still exists (EPERM means it exists but is not ours). */
export function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * A fresh per-run prefix `amlab<pid base 36>-<4 random>-`: the pid lets `sweepStale` tell an
 * abandoned run from a live one, the random part keeps two labs of one process apart.
 */
export function newPrefix (root = PREFIX_ROOT): string {
  return `${root}${process.pid.toString(36)}-${randomTag()}-`
}

/** Four random [a-z0-9] characters. */
export function randomTag (): string {
  return Array.from(randomBytes(4), b => (b % 36).toString(36)).join('')
}

/**
 * Deletes leftover namespaces of crashed runs: names `<prefixRoot><pid36>-...` whose pid is no
 * longer alive, and those runs' temp directories. Live runs (including this process) are left
 * alone. Returns the namespace names removed.
 */
export async function sweepStale (prefixRoot = PREFIX_ROOT): Promise<string[]> {
  const pattern = new RegExp(`^${prefixRoot.replace(/[^A-Za-z0-9]/g, '\\$&')}([0-9a-z]+)-`)
  const removed: string[] = []
  for (const name of await listNamespaces()) {
    const m = pattern.exec(name)
    if (m === null) continue
    const pid = parseInt(m[1] ?? '', 36)
    if (!Number.isSafeInteger(pid) || pid <= 0 || pidAlive(pid)) continue
    await deleteNamespace(name)
    removed.push(name)
  }
  // The temp directories (coturn's log, pid file and db) of those runs: `<tmpdir>/<prefix>XXXXXX`.
  const dirPattern = new RegExp(`${pattern.source}[0-9a-z]{4}-[A-Za-z0-9]{6}$`)
  for (const entry of await readdir(tmpdir()).catch(() => [] as string[])) {
    const m = dirPattern.exec(entry)
    if (m === null) continue
    const pid = parseInt(m[1] ?? '', 36)
    if (!Number.isSafeInteger(pid) || pid <= 0 || pidAlive(pid)) continue
    await rm(join(tmpdir(), entry), { recursive: true, force: true })
  }
  return removed
}

/** Spawns `cmd args` inside namespace `ns` as a process-group leader (so the whole group can be killed). */
export function spawnIn (ns: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: 'pipe', ...opts, detached: true, shell: false })
}
