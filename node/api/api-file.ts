/**
 * `<data>/api.json`: where a running peer's API listens ({url, port, pid}), beside its token, so
 * the CLI given a data directory (or finding one by port) knows where to go and what to send.
 * Written when the API listens, removed when it closes.
 */
import { readFileSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { writeAtomic } from '../storage/identity.ts'
import { alive } from '../storage/lock.ts'

export const API_FILE = 'api.json'

export interface ApiFile { url: string, port: number, pid: number }

export async function writeApiFile (dataDir: string, info: ApiFile): Promise<void> {
  await writeAtomic(join(dataDir, API_FILE), `${JSON.stringify(info)}\n`)
}

/** Removes it if it still describes this API (a later peer on the same directory may have replaced it). */
export function removeApiFile (dataDir: string, port: number): void {
  const path = join(dataDir, API_FILE)
  const info = readApiFile(dataDir)
  if (info?.pid === process.pid && info.port === port) try { unlinkSync(path) } catch {}
}

/** The file of a peer that is still running, or undefined. */
export function readApiFile (dataDir: string): ApiFile | undefined {
  try {
    const o = JSON.parse(readFileSync(join(dataDir, API_FILE), 'utf8')) as Partial<ApiFile>
    if (typeof o.url !== 'string' || !Number.isInteger(o.port) || !Number.isInteger(o.pid) || (o.pid as number) <= 0) return undefined
    return alive(o.pid!) ? o as ApiFile : undefined
  } catch {
    return undefined
  }
}
