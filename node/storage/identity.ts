/** The peer's persistent Ed25519 identity: created on first run in the data directory, reused after. */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const IDENTITY_FILE = 'identity.key'

export async function loadOrCreateIdentity (dataDir: string): Promise<{ key: PrivateKey, created: boolean }> {
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
      return { key, created: false }
    } catch (err) {
      throw new Error(`identity ${path} is not a valid key (${(err as Error).message}) — move it away to create a new identity`)
    }
  }
  const key = await generateKeyPair('Ed25519')
  await mkdir(dataDir, { recursive: true })
  await writeAtomic(path, privateKeyToProtobuf(key), 0o600)
  return { key, created: true }
}

/** Writes via a temporary file and rename, so a crash never leaves a half-written file. */
export async function writeAtomic (path: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, data, { mode })
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
 */
export function coalescedWriter (path: string, content: () => string | Uint8Array): { save: () => void, flush: () => Promise<void> } {
  let dirty = false
  let running: Promise<void> | undefined
  const save = (): void => {
    dirty = true
    running ??= (async () => {
      while (dirty) {
        dirty = false
        await writeAtomic(path, content())
      }
    })().catch(err => { process.emitWarning(`could not save ${path}: ${(err as Error).message}`) }).finally(() => { running = undefined })
  }
  return { save, flush: async () => { save(); await running } }
}
