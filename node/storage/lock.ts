/**
 * One running peer per data directory: two peers on one identity would each think the other's
 * address is their own and fight over the same files. The lock file holds the owner's pid and
 * command line; a lock whose process is gone (a crash) is taken over.
 */
import { openSync, readFileSync, unlinkSync, writeSync, closeSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'

const LOCK_FILE = 'peer.lock'

export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError'
}

export interface DirLock { release (): void }

export function lockDataDir (dir: string): DirLock {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, LOCK_FILE)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644)
      writeSync(fd, JSON.stringify({ pid: process.pid, command: process.argv.slice(1).join(' ').slice(0, 300) }))
      closeSync(fd)
      let released = false
      return {
        release () {
          if (released) return
          released = true
          try { if (ownerOf(path)?.pid === process.pid) unlinkSync(path) } catch {}
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = ownerOf(path)
      if (owner !== undefined && owner.pid !== process.pid && alive(owner.pid)) {
        throw new DataDirInUseError(`data directory ${dir} is in use by a running peer (pid ${owner.pid}${owner.command !== '' ? `: ${owner.command}` : ''}) — stop that peer, or give this one its own directory with --data DIR`)
      }
      if (owner?.pid === process.pid) throw new DataDirInUseError(`data directory ${dir} is already used by another peer in this process — give each peer its own --data DIR`)
      // A torn or stale lock: its owner is gone.
      try { unlinkSync(path) } catch {}
    }
  }
  throw new DataDirInUseError(`could not lock data directory ${dir}: another peer keeps taking it — give this peer its own --data DIR`)
}

function ownerOf (path: string): { pid: number, command: string } | undefined {
  try {
    const o = JSON.parse(readFileSync(path, 'utf8')) as { pid?: unknown, command?: unknown }
    return typeof o.pid === 'number' && Number.isInteger(o.pid) && o.pid > 0 ? { pid: o.pid, command: typeof o.command === 'string' ? o.command : '' } : undefined
  } catch {
    return undefined
  }
}

/** Whether a process with this pid exists (EPERM: it does, under another user). */
export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
