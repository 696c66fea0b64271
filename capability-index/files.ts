/** The index's file helpers: durable writes, and reading an hnswlib file with its checks. */
import { closeSync, existsSync, fsyncSync, openSync, readSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { hnswlib } from './hnswlib.ts'
import type { Hnsw } from './shard.ts'

export class IndexLoadError extends Error {
  override name = 'IndexLoadError'
}

/**
 * Reads one HNSW file of the index in `dir` (`what` names it in errors: "shard", "skill index").
 * Refuses a missing file, other dims than `dims`, and another point count than `slots`.
 */
export function readHnsw (dir: string, file: string, dims: number, slots: number, what: string): Hnsw {
  const path = join(dir, file)
  if (!existsSync(path)) throw new IndexLoadError(`capability index in ${dir} lists ${what} ${file}, which is missing`)
  const fileDims = hnswFileDims(path)
  if (fileDims <= 0) throw new IndexLoadError(`${what} ${file} is not an hnswlib index file`)
  if (fileDims !== dims) throw new IndexLoadError(`${what} ${file} holds ${fileDims}-dimensional vectors, expected ${dims}`)
  // A fresh object for every read: reading into an initialised hnswlib index that then
  // fails leaves it in a state that crashes the process at exit.
  const hnsw = new hnswlib.HierarchicalNSW('cosine', dims)
  try {
    hnsw.readIndexSync(path)
  } catch (err) {
    throw new IndexLoadError(`${what} ${file} cannot be read: ${(err as Error).message}`)
  }
  if (hnsw.getCurrentCount() !== slots) throw new IndexLoadError(`${what} ${file} holds ${hnsw.getCurrentCount()} points, its metadata says ${slots}`)
  return hnsw
}

/** Writes an HNSW file and syncs it to disk. */
export function writeHnsw (hnsw: Hnsw, path: string): void {
  hnsw.writeIndexSync(path)
  fsyncPath(path)
}

/**
 * Dimensions recorded in an hnswlib index file's header: the point bytes are label_offset −
 * offsetData (header: offsetLevel0, maxElements, count, sizePerElement, labelOffset, offsetData,
 * each a little-endian u64). hnswlib itself does not check them against the space it reads into.
 */
function hnswFileDims (path: string): number {
  const header = Buffer.alloc(48)
  const fd = openSync(path, 'r')
  try {
    if (readSync(fd, header, 0, 48, 0) < 48) return -1
  } finally {
    closeSync(fd)
  }
  const bytes = Number(header.readBigUInt64LE(32) - header.readBigUInt64LE(40))
  return bytes % 4 === 0 ? bytes / 4 : -1
}

export function writeFileDurable (path: string, data: Uint8Array): void {
  const fd = openSync(path, 'w')
  try {
    for (let at = 0; at < data.byteLength;) at += writeSync(fd, data, at, data.byteLength - at)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

export function writeFileAtomic (path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`
  writeFileDurable(tmp, Buffer.from(text, 'utf8'))
  renameSync(tmp, path)
}

export function fsyncPath (path: string): void {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
