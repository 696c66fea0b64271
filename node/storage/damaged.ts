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
  const keptAs = `${file}.damaged-${Date.now()}`
  await rename(file, keptAs)
  return { file, keptAs, error: error.message.slice(0, 300) }
}

/** The file's contents, or undefined when there is none yet (any other read error is thrown). */
export function missing (err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT'
}
