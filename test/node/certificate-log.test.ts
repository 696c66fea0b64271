// The append-only certificate log on real files: appends survive a reopen, a torn tail at any byte
// of the last record is cut off (and kept aside, and reported), a damaged middle record costs only
// itself, compaction keeps what it is given and what was appended meanwhile.
import { describe, it, expect, afterEach } from 'vitest'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CertificateLog, frameAll, LOG_HEADER } from '../../node/storage/certificate-log.ts'

const dirs: string[] = []
afterEach(async () => { await Promise.all(dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) })) })
async function tempDir (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'agentmesh-certlog-'))
  dirs.push(d)
  return d
}

/** Deterministic records of varied sizes (no randomness: a failure reproduces). */
function record (i: number): Uint8Array {
  const r = new Uint8Array(20 + (i * 37) % 300)
  for (let j = 0; j < r.length; j++) r[j] = (i * 31 + j * 7) & 0xff
  return r
}

describe('certificate log', () => {
  it('reads back every record appended, in order, after a reopen', async () => {
    const path = join(await tempDir(), 'certificates.log')
    const first = await CertificateLog.open(path)
    expect(first.records).toEqual([])
    const written = Array.from({ length: 50 }, (_, i) => record(i))
    for (const r of written) first.log.append(r)
    expect(first.log.records).toBe(50)
    await first.log.close()
    const again = await CertificateLog.open(path)
    expect(again.records).toEqual(written)
    expect(again.damaged).toEqual([])
    again.log.append(record(50))
    await again.log.close()
    const last = await CertificateLog.open(path)
    expect(last.records).toEqual([...written, record(50)])
    await last.log.close()
  })

  it('refuses an empty or oversized record instead of writing a frame it could not read back', async () => {
    const { log } = await CertificateLog.open(join(await tempDir(), 'c.log'), { maxRecordBytes: 100 })
    expect(() => log.append(new Uint8Array(0))).toThrow(/does not fit/)
    expect(() => log.append(new Uint8Array(101))).toThrow(/does not fit/)
    await log.close()
  })

  it('cuts a torn tail at every byte offset of the last record, keeps the file aside and says what was dropped', async () => {
    const dir = await tempDir()
    const written = Array.from({ length: 5 }, (_, i) => record(i))
    const whole = frameAll(written)
    const lastStart = frameAll(written.slice(0, 4)).byteLength
    for (let cut = lastStart; cut < whole.byteLength; cut++) {
      const path = join(dir, `torn-${cut}.log`)
      const torn = whole.subarray(0, cut)
      await writeFile(path, torn)
      const { log, records, damaged } = await CertificateLog.open(path)
      expect(records).toEqual(written.slice(0, 4))
      if (cut === lastStart) {
        expect(damaged).toEqual([]) // a clean end: nothing torn
      } else {
        expect(damaged).toHaveLength(1)
        expect(damaged[0]!.error).toContain(`4 recovered, ${cut - lastStart} bytes dropped`)
        expect(damaged[0]!.error).toContain('torn tail')
        expect(new Uint8Array(await readFile(damaged[0]!.keptAs))).toEqual(torn)
      }
      expect((await stat(path)).size).toBe(lastStart)
      // The log goes on from the cut: the next append reads back cleanly.
      log.append(written[4]!)
      await log.close()
      const again = await CertificateLog.open(path)
      expect(again.records).toEqual(written)
      expect(again.damaged).toEqual([])
      await again.log.close()
    }
  })

  it('keeps every good record around a damaged one in the middle and rewrites the file without it', async () => {
    const dir = await tempDir()
    const path = join(dir, 'certificates.log')
    const written = Array.from({ length: 10 }, (_, i) => record(i))
    const bytes = frameAll(written)
    const at = frameAll(written.slice(0, 3)).byteLength + 8 + 5 // inside record 3's bytes
    bytes[at] = bytes[at]! ^ 0xff
    await writeFile(path, bytes)
    const { log, records, damaged } = await CertificateLog.open(path)
    expect(records).toEqual([...written.slice(0, 3), ...written.slice(4)])
    expect(damaged).toHaveLength(1)
    expect(damaged[0]!.error).toContain(`9 recovered, ${8 + written[3]!.byteLength} bytes dropped`)
    expect(new Uint8Array(await readFile(damaged[0]!.keptAs))).toEqual(bytes)
    await log.close()
    const again = await CertificateLog.open(path)
    expect(again.records).toEqual(records)
    expect(again.damaged).toEqual([])
    await again.log.close()
  })

  it('a damaged length field in the middle is skipped too, and a file that is not a log is set aside whole', async () => {
    const dir = await tempDir()
    const written = Array.from({ length: 6 }, (_, i) => record(i))
    const bytes = frameAll(written)
    bytes[frameAll(written.slice(0, 2)).byteLength] = 0x7f // record 2's length: far past the end
    const path = join(dir, 'len.log')
    await writeFile(path, bytes)
    const loaded = await CertificateLog.open(path)
    expect(loaded.records).toEqual([...written.slice(0, 2), ...written.slice(3)])
    expect(loaded.damaged).toHaveLength(1)
    await loaded.log.close()

    const junk = join(dir, 'junk.log')
    await writeFile(junk, 'not a log at all')
    const fresh = await CertificateLog.open(junk)
    expect(fresh.records).toEqual([])
    expect(fresh.damaged[0]!.error).toContain('0 records recovered, 16 bytes dropped')
    expect(await readFile(fresh.damaged[0]!.keptAs, 'utf8')).toBe('not a log at all')
    expect(new Uint8Array(await readFile(junk))).toEqual(LOG_HEADER)
    await fresh.log.close()
  })

  it('compacts to the retained records, keeping what was appended while it ran', async () => {
    const dir = await tempDir()
    const path = join(dir, 'certificates.log')
    const { log } = await CertificateLog.open(path)
    const written = Array.from({ length: 40 }, (_, i) => record(i))
    for (const r of written) log.append(r)
    const before = (await stat(path)).size
    const compacting = log.compact(written.slice(30))
    log.append(record(40)) // lands in the old file and is carried into the new one
    log.append(record(41))
    await compacting
    expect(log.records).toBe(12)
    log.append(record(42))
    await log.close()
    expect((await stat(path)).size).toBeLessThan(before)
    const again = await CertificateLog.open(path)
    expect(again.records).toEqual([...written.slice(30), record(40), record(41), record(42)])
    expect(again.damaged).toEqual([])
    await again.log.close()
    expect((await readdir(dir)).filter(f => f.endsWith('.tmp'))).toEqual([])
  })
})
