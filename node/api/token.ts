/**
 * The API's bearer token: 32 random bytes (64 hex digits) in `<data>/api-token`, mode 0600,
 * created on first start and reused after. Whoever can read that file may use the API.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PeerStartError } from '../peer.ts'

export const TOKEN_FILE = 'api-token'
const TOKEN = /^[0-9a-f]{64}$/

export async function loadOrCreateToken (dataDir: string): Promise<{ token: string, path: string }> {
  const path = join(dataDir, TOKEN_FILE)
  for (let attempt = 0; attempt < 2; attempt++) {
    const existing = await readToken(path)
    if (existing !== undefined) return { token: existing, path }
    await mkdir(dataDir, { recursive: true })
    // Written aside, then linked into place: link fails if the file appeared meanwhile, so a
    // reader never sees half a token and a concurrent creator never overwrites one in use.
    const tmp = `${path}.${process.pid}.tmp`
    await writeFile(tmp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 })
    try {
      await link(tmp, path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    } finally {
      await unlink(tmp).catch(() => {})
    }
  }
  throw new PeerStartError(`could not create the API token ${path} — check the data directory's permissions`)
}

async function readToken (path: string): Promise<string | undefined> {
  let text: string
  try {
    const info = await stat(path)
    // Readable by others means anyone on this machine may drive the peer: refuse to use it.
    if ((info.mode & 0o077) !== 0) throw new PeerStartError(`the API token ${path} is readable by other users (mode ${(info.mode & 0o777).toString(8)}) — run chmod 600 ${path}, or delete it to make a new one`)
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    if (err instanceof PeerStartError) throw err
    throw new PeerStartError(`cannot read the API token ${path}: ${(err as Error).message}`)
  }
  const token = text.trim()
  if (!TOKEN.test(token)) throw new PeerStartError(`the API token ${path} is not 64 hex digits — delete it to make a new one`)
  return token
}

/** The token from a client's file, for the CLI: undefined when it is missing or unreadable. */
export async function readClientToken (path: string): Promise<string | undefined> {
  try {
    const token = (await readFile(path, 'utf8')).trim()
    return TOKEN.test(token) ? token : undefined
  } catch {
    return undefined
  }
}

/** `Authorization: Bearer <token>` against the token, in time that does not depend on where they differ. */
export function bearerMatches (header: string | undefined, token: string): boolean {
  const given = /^Bearer +(\S+) *$/i.exec(header ?? '')?.[1] ?? ''
  // Hashing first makes both sides the same length, so the comparison leaks nothing about the length either.
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(given), digest(token)) && given !== ''
}
