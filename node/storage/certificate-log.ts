/**
 * The certificates a peer keeps, as an append-only file of framed records: a header, then per
 * record a 4-byte big-endian length, a CRC-32 of the length and the bytes, and the bytes. A new
 * certificate costs one append, not a rewrite of all of them.
 *
 * Durability: each record is written with a synchronous write() before `append` returns, so a
 * process crash (kill -9) loses nothing once the certificate is in the log; an fdatasync runs in
 * the background after every burst of appends (at most one at a time), so a machine crash can lose
 * only the last burst. No fsync per record: certificates are signed by others and held by every
 * peer that saw them, so what a power cut takes is fetched again by catch-up; an fsync per
 * certificate would put a disk flush on the event loop for each one.
 *
 * Loading stops being trusting at the first bad frame and never drops anything silently:
 * - a torn tail (the crash case: the last record half written, no valid frame after it) is cut
 *   off;
 * - a damaged record with valid records after it (a disk error, a hand edit) is skipped by scanning
 *   byte by byte for the next frame whose length and CRC check out.
 * Either way the file as found is set aside (node/storage/damaged.ts), rewritten (atomically) with
 * every record that survived, and the damage reported.
 * Each report says how many records were recovered and how many bytes were dropped.
 *
 * Compaction: the log only grows, while the peer keeps at most `maxCertificates`; the owner calls
 * `compact(retained)` when `records` passes its threshold (the service: twice the cap), which
 * rewrites the file once, atomically, with the retained ones.
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs'
import { open, readFile, unlink, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { crc32 } from 'node:zlib'
import { defaultLogger } from '@libp2p/logger'
import type { Logger } from '@libp2p/interface'
import { missing, setAside, type Damage } from './damaged.ts'
import { writeAtomic } from './identity.ts'

/** 'AMCLOG' + format version 1 + newline: a file that does not start with it is not a log. */
export const LOG_HEADER = new Uint8Array([0x41, 0x4d, 0x43, 0x4c, 0x4f, 0x47, 0x01, 0x0a])
const FRAME_HEAD = 8
/** Largest record accepted (a certificate is at most 2 MiB, see protocols/consensus/certificate.ts). */
const DEFAULT_MAX_RECORD = 4 * 1024 * 1024
const LOST = 'the certificates in the dropped bytes; peers send them again on catch-up'

export interface LoadedLog {
  log: CertificateLog
  /** Every record that read back, in the order they were appended. */
  records: Uint8Array[]
  /** What was found damaged and set aside (empty when the file was clean). */
  damaged: Damage[]
}

export class CertificateLog {
  readonly path: string
  readonly #maxRecord: number
  #handle: FileHandle
  #records: number
  #syncing: Promise<void> | undefined
  #dirty = false
  /** While compacting: frames appended meanwhile, to be copied into the new file before the switch. */
  #pending: Uint8Array[] | undefined
  #compaction: Promise<void> | undefined
  #closed = false
  /** Appends that failed (disk full, …): each was also logged as an error. */
  failures = 0
  readonly #log: Pick<Logger, 'error'>

  private constructor (path: string, handle: FileHandle, records: number, maxRecord: number, log: Pick<Logger, 'error'>) {
    this.path = path
    this.#handle = handle
    this.#records = records
    this.#maxRecord = maxRecord
    this.#log = log
  }

  /** Opens (creating if missing) the log at `path` and reads back what it holds. */
  static async open (path: string, options: { maxRecordBytes?: number, /** Where a failed append or flush is said (a peer gives its logger; default libp2p's DEBUG output). */ log?: Pick<Logger, 'error'> } = {}): Promise<LoadedLog> {
    const maxRecord = options.maxRecordBytes ?? DEFAULT_MAX_RECORD
    const damaged: Damage[] = []
    let bytes: Uint8Array | undefined
    try {
      bytes = new Uint8Array(await readFile(path))
    } catch (err) {
      if (!missing(err)) throw err
    }
    let records: Uint8Array[] = []
    if (bytes !== undefined && !startsWithHeader(bytes)) {
      // Not a log at all (or a torn creation): nothing in it can be trusted as a frame.
      damaged.push(await setAside(path, new Error(`${path} does not start with the certificate log header: 0 records recovered, ${bytes.byteLength} bytes dropped`), LOST))
      bytes = undefined
    }
    if (bytes === undefined) {
      await writeDurably(path, LOG_HEADER)
    } else {
      const parsed = parseLog(bytes, maxRecord)
      records = parsed.records
      if (parsed.gaps.length > 0) {
        const dropped = parsed.gaps.reduce((n, g) => n + g.bytes, 0)
        const where = parsed.gaps.map(g => `${g.bytes} bytes at offset ${g.at}${g.tail ? ' (torn tail)' : ''}`).join(', ')
        // Torn tail or damaged middle alike: the file as found goes aside, the records that read back are written anew.
        damaged.push(await setAside(path, new Error(`${path}: damaged records: ${records.length} recovered, ${dropped} bytes dropped (${where})`), LOST))
        await writeDurably(path, frameAll(records))
      }
    }
    const handle = await open(path, 'a')
    return { log: new CertificateLog(path, handle, records.length, maxRecord, options.log ?? defaultLogger().forComponent('agentmesh:certificate-log')), records, damaged }
  }

  /** Whether a compaction is under way (a second one would be refused). */
  get compacting (): boolean { return this.#pending !== undefined }

  /** Records in the file (appended since the last compaction, or retained by it). */
  get records (): number { return this.#records }

  /** Appends one record: written before this returns, flushed to disk soon after. */
  append (record: Uint8Array): void {
    if (this.#closed) throw new Error(`${this.path} is closed`)
    if (record.byteLength === 0 || record.byteLength > this.#maxRecord) throw new Error(`a record of ${record.byteLength} bytes does not fit the log (1 to ${this.#maxRecord})`)
    const f = frame(record)
    try {
      writeFully(this.#handle.fd, f)
    } catch (err) {
      this.failures++
      this.#log.error('could not append a certificate to %s: %e', this.path, err)
      return
    }
    this.#pending?.push(f)
    this.#records++
    this.#scheduleSync()
  }

  /**
   * Rewrites the log with `retained` only (atomically: a crash leaves the old file or the new one).
   * Records appended while it runs go to the old file and are copied into the new one just before
   * it replaces the old, in one synchronous step, so none is ever missing from the file on disk.
   */
  async compact (retained: readonly Uint8Array[]): Promise<void> {
    if (this.#pending !== undefined || this.#closed) return
    this.#pending = []
    this.#compaction = this.#compact(retained)
    try { await this.#compaction } finally { this.#compaction = undefined }
  }

  async #compact (retained: readonly Uint8Array[]): Promise<void> {
    const pending = this.#pending!
    const tmp = `${this.path}.${process.pid}.tmp`
    let next: FileHandle | undefined
    try {
      next = await open(tmp, 'w', 0o644)
      const kept = retained.filter(r => r.byteLength > 0 && r.byteLength <= this.#maxRecord)
      await next.writeFile(frameAll(kept))
      await next.sync()
      // From here to the switch nothing yields: no append can fall between the two files.
      for (const f of pending) writeFully(next.fd, f)
      renameSync(tmp, this.path)
      const old = this.#handle
      this.#handle = next
      this.#records = kept.length + pending.length
      next = undefined
      await old.close()
      syncDir(this.path)
    } finally {
      this.#pending = undefined
      if (next !== undefined) {
        await next.close().catch(() => {})
        await unlink(tmp).catch(() => {})
      }
    }
  }

  /** Flushes what was appended to disk and closes the file (after a compaction under way). */
  async close (): Promise<void> {
    if (this.#closed) return
    await this.#compaction?.catch(() => {})
    this.#closed = true
    await this.#syncing
    await this.#handle.datasync().catch(() => {})
    await this.#handle.close()
  }

  #scheduleSync (): void {
    this.#dirty = true
    this.#syncing ??= (async () => {
      while (this.#dirty && !this.#closed) {
        this.#dirty = false
        await this.#handle.datasync()
      }
    })().catch(err => { this.#log.error('could not flush %s: %e', this.path, err) }).finally(() => { this.#syncing = undefined })
  }
}

interface Gap { at: number, bytes: number, tail: boolean }

/**
 * Reads frames after the header; at a bad one, scans for the next offset where a whole frame checks
 * out. Nothing found: the rest is a torn tail.
 */
export function parseLog (bytes: Uint8Array, maxRecord = DEFAULT_MAX_RECORD): { records: Uint8Array[], gaps: Gap[] } {
  const records: Uint8Array[] = []
  const gaps: Gap[] = []
  let pos = LOG_HEADER.byteLength
  while (pos < bytes.byteLength) {
    const len = frameAt(bytes, pos, maxRecord)
    if (len !== undefined) {
      records.push(bytes.slice(pos + FRAME_HEAD, pos + FRAME_HEAD + len))
      pos += FRAME_HEAD + len
      continue
    }
    let next = pos + 1
    while (next < bytes.byteLength && frameAt(bytes, next, maxRecord) === undefined) next++
    gaps.push({ at: pos, bytes: next - pos, tail: next >= bytes.byteLength })
    pos = next
  }
  return { records, gaps }
}

/** The length of a valid frame at `pos`, or undefined. */
function frameAt (bytes: Uint8Array, pos: number, maxRecord: number): number | undefined {
  if (bytes.byteLength - pos < FRAME_HEAD) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset + pos, FRAME_HEAD)
  const len = view.getUint32(0)
  if (len === 0 || len > maxRecord || pos + FRAME_HEAD + len > bytes.byteLength) return undefined
  const sum = crc32(bytes.subarray(pos + FRAME_HEAD, pos + FRAME_HEAD + len), crc32(bytes.subarray(pos, pos + 4)))
  return sum === view.getUint32(4) ? len : undefined
}

export function frame (record: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEAD + record.byteLength)
  const view = new DataView(out.buffer)
  view.setUint32(0, record.byteLength)
  out.set(record, FRAME_HEAD)
  view.setUint32(4, crc32(record, crc32(out.subarray(0, 4))))
  return out
}

/** A whole log file: the header and a frame per record. */
export function frameAll (records: readonly Uint8Array[]): Uint8Array {
  const frames = records.map(frame)
  const out = new Uint8Array(LOG_HEADER.byteLength + frames.reduce((n, f) => n + f.byteLength, 0))
  out.set(LOG_HEADER, 0)
  let at = LOG_HEADER.byteLength
  for (const f of frames) { out.set(f, at); at += f.byteLength }
  return out
}

function startsWithHeader (bytes: Uint8Array): boolean {
  return bytes.byteLength >= LOG_HEADER.byteLength && LOG_HEADER.every((b, i) => bytes[i] === b)
}

function writeFully (fd: number, data: Uint8Array): void {
  let done = 0
  while (done < data.byteLength) done += writeSync(fd, data, done)
}

/**
 * Writes a whole file via a temporary one, fsync'd, renamed over, and the directory fsync'd: after
 * it returns the new file survives a power cut (the migration deletes the old one after this).
 */
async function writeDurably (path: string, data: Uint8Array): Promise<void> {
  await writeAtomic(path, data)
  syncDir(path)
}

/** Makes a rename in `file`'s directory durable (best effort where directories cannot be opened). */
function syncDir (file: string): void {
  try {
    const fd = openSync(dirname(file), 'r')
    try { fsyncSync(fd) } finally { closeSync(fd) }
  } catch {}
}
