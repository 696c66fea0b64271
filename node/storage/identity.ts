/** The peer's persistent Ed25519 identity: created on first run in the data directory, reused after. */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyFromRaw, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Logger, PrivateKey } from '@libp2p/interface'
import { generateKeyPairSync } from 'node:crypto'
import { closeSync, existsSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs'
import { mkdir, open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { workOfKey } from '../../protocols/identity.ts'

const IDENTITY_FILE = 'identity.key'

/** Whether `dataDir` holds an identity yet (the first start makes one). */
export function hasIdentity (dataDir: string): boolean {
  return existsSync(join(dataDir, IDENTITY_FILE))
}

/** The identity on disk has less proof of work than the network asks: the caller says what to do. */
export class IdentityWorkError extends Error {
  override name = 'IdentityWorkError'
}

export interface IdentityOptions {
  /** Proof of work a new identity is made with, and an existing one must have (network `idWorkBits`). */
  workBits?: number
  /** Told now and then while a new identity with work is being searched for. */
  onProgress?: (tried: number) => void
}

export async function loadOrCreateIdentity (dataDir: string, options: IdentityOptions = {}): Promise<{ key: PrivateKey, created: boolean }> {
  const workBits = options.workBits ?? 0
  const path = join(dataDir, IDENTITY_FILE)
  let bytes: Uint8Array | undefined
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`cannot read identity ${path}: ${(err as Error).message} — check the file's permissions or choose another --data directory`)
    }
  }
  if (bytes !== undefined) {
    try {
      const key = privateKeyFromProtobuf(bytes)
      if (key.type !== 'Ed25519') throw new Error(`it holds a ${key.type} key, agentmesh needs Ed25519`)
      const work = workOfKey(key.publicKey.raw)
      if (work < workBits) {
        throw new IdentityWorkError(`identity ${path} has ${work} bits of proof of work; this network asks for ${workBits} — move the file away (a new identity is made, taking about 2^${workBits} key pairs) or use another --data directory`)
      }
      return { key, created: false }
    } catch (err) {
      if (err instanceof IdentityWorkError) throw err
      throw new Error(`identity ${path} is not a valid key (${(err as Error).message}) — move it away to create a new identity`)
    }
  }
  const key = workBits > 0 ? await mintKey(workBits, options.onProgress) : await generateKeyPair('Ed25519')
  await mkdir(dataDir, { recursive: true })
  await writeAtomic(path, privateKeyToProtobuf(key), 0o600)
  return { key, created: true }
}

/**
 * An Ed25519 key whose peer id carries `bits` of proof of work (protocols/identity.ts `workOfKey`):
 * key pairs are drawn until one qualifies, 2^bits on average. node:crypto draws and checks ~13k a
 * second (`npm run bench -- id-work`); the search yields to the event loop every 2,048 tries.
 */
export async function mintKey (bits: number, onProgress?: (tried: number) => void): Promise<PrivateKey> {
  let tried = 0
  for (;;) {
    for (let i = 0; i < 2048; i++) {
      tried++
      const { publicKey, privateKey } = generateKeyPairSync('ed25519', {
        publicKeyEncoding: { type: 'spki', format: 'der' },
        privateKeyEncoding: { type: 'pkcs8', format: 'der' }
      })
      // The raw key is the last 32 bytes of both DER forms (RFC 8410).
      const pub = publicKey.subarray(publicKey.byteLength - 32)
      if (workOfKey(pub) < bits) continue
      const raw = new Uint8Array(64)
      raw.set(privateKey.subarray(privateKey.byteLength - 32), 0)
      raw.set(pub, 32)
      return privateKeyFromRaw(raw)
    }
    onProgress?.(tried)
    await new Promise(resolve => setImmediate(resolve))
  }
}

/**
 * Writes via a temporary file, flushed to disk, and a rename: a crash (of the process or the
 * machine) leaves the old file or the new one, never half of one.
 */
export async function writeAtomic (path: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  const file = await open(tmp, 'w', mode)
  try {
    await file.writeFile(data)
    await file.sync()
  } finally {
    await file.close()
  }
  await rename(tmp, path)
}

/**
 * The same, synchronously and flushed to disk: for state that must be durable before the peer acts
 * on it (a version counter before the record that uses it leaves the host).
 */
export function writeAtomicSync (path: string, data: Uint8Array | string): void {
  const tmp = `${path}.${process.pid}.tmp`
  const fd = openSync(tmp, 'w', 0o644)
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
}

/**
 * Saves `content()` to `path` whenever asked, coalescing bursts: at most one write runs at a time,
 * and a request made during a write is served by one more write afterwards, so nothing is lost.
 * A write that fails is logged (`log.error`: the peer's logger says it to the operator).
 */
export function coalescedWriter (path: string, content: () => string | Uint8Array, log: Pick<Logger, 'error'>): { save: () => void, flush: () => Promise<void> } {
  let dirty = false
  let running: Promise<void> | undefined
  const save = (): void => {
    dirty = true
    running ??= (async () => {
      while (dirty) {
        dirty = false
        await writeAtomic(path, content())
      }
    })().catch(err => { log.error('could not save %s: %e', path, err) }).finally(() => { running = undefined })
  }
  return { save, flush: async () => { save(); await running } }
}
