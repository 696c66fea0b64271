/**
 * A file the peer wrote that no longer reads back (a torn write, a disk error, a hand edit): it
 * is renamed aside, never overwritten by the next save, so nothing is lost silently and the
 * operator can look at it. The caller says what the peer loses and starts without it.
 */
import { readFile, rename } from 'node:fs/promises'

export interface Damage {
  file: string
  keptAs: string
  error: string
  /** What the peer starts without, and how it gets it back (if it can). */
  lost?: string
}

export async function setAside (file: string, error: Error, lost?: string): Promise<Damage> {
  const keptAs = asideName(file)
  await rename(file, keptAs)
  return { file, keptAs, error: error.message.slice(0, 300), ...(lost !== undefined ? { lost } : {}) }
}

/**
 * Reads and parses a file the peer wrote: undefined when it is not there yet; when it does not
 * parse, it is set aside and the damage (with what that `lost`) is pushed to `damaged`.
 */
export async function readOrSetAside<T> (file: string, parse: (bytes: Buffer) => T, lost: string, damaged: Damage[]): Promise<T | undefined> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    if (missing(err)) return undefined
    throw err
  }
  try {
    return parse(bytes)
  } catch (err) {
    damaged.push(await setAside(file, err as Error, lost))
    return undefined
  }
}

/** Where a damaged `file` is kept: beside it, named for when it was found. */
export function asideName (file: string): string {
  return `${file}.damaged-${Date.now()}`
}

/** Whether a read failed because the file is not there yet (not damage). */
export function missing (err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT'
}
