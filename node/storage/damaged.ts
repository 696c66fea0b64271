/**
 * A file the peer wrote that no longer reads back (a torn write, a disk error, a hand edit): it
 * is renamed aside, never overwritten by the next save, so nothing is lost silently and the
 * operator can look at it. The caller says what the peer loses and starts without it.
 */
import { rename } from 'node:fs/promises'

export interface Damage {
  file: string
  keptAs: string
  error: string
}

export async function setAside (file: string, error: Error): Promise<Damage> {
  const keptAs = asideName(file)
  await rename(file, keptAs)
  return { file, keptAs, error: error.message.slice(0, 300) }
}

/** Where a damaged `file` is kept: beside it, named for when it was found. */
export function asideName (file: string): string {
  return `${file}.damaged-${Date.now()}`
}

/** Whether a read failed because the file is not there yet (not damage). */
export function missing (err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT'
}
