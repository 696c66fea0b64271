/**
 * Talking to an honest peer's HTTP API as its own user, with a deadline on every call. A peer
 * that keeps an API token (`<data>/api-token`, once the API defences land) gets it in every call,
 * as its user's CLI would send it; the rogue never has it.
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

const tokens = new Map<number, string>()

/** Remembers the token of the peer whose API is on `port`, if its data directory has one. */
export function learnToken (port: number, dataDir: string): void {
  try {
    tokens.set(port, readFileSync(join(dataDir, 'api-token'), 'utf8').trim())
  } catch {}
}

function auth (port: number): Record<string, string> {
  const token = tokens.get(port)
  return token === undefined ? {} : { authorization: `Bearer ${token}` }
}

export async function getJson (port: number, path: string, timeoutMs = 5000): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: auth(port), signal: AbortSignal.timeout(timeoutMs) })
  if (!res.ok) throw new Error(`GET ${path}: ${res.status}`)
  return await res.json()
}

export async function postJson (port: number, path: string, body: unknown, timeoutMs: number): Promise<{ status: number, body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth(port) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs)
  })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch {}
  return { status: res.status, body: parsed }
}

/** The short reason a call failed: an errno code, a timeout, or the message. */
export function failureOf (err: unknown): string {
  const e = err as Error & { cause?: { code?: string } }
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timeout'
  return e.cause?.code ?? e.message.slice(0, 60)
}

/** Resident set size of a process in MB (Linux), or undefined once it is gone. */
export async function rssMb (pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) / 1024
  } catch {
    return undefined
  }
}
