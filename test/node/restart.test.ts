// A peer saves its verified table and capability index when it stops, and reloads them on start.
import { describe, it, expect } from 'vitest'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { HashEmbedder, type Embedder } from '../../capability-index/index.ts'
import { connectRing, untilTables } from '../../node/cli/local-mesh.ts'
import { usePeers } from '../helpers/peers.ts'
import { decodeCanonical, encodeCanonical } from '../../protocols/cbor.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { ed25519Signer } from '../../node/network/crypto.ts'
import { CertificateLog, frameAll } from '../../node/storage/certificate-log.ts'
import { makeCertificate } from '../helpers/certificates.ts'
import { until } from '../helpers/until.ts'

const { peer, stop } = usePeers('agentmesh-restart-')


/** Counts the texts it embeds. */
function counting (): Embedder & { texts: string[] } {
  const inner = new HashEmbedder()
  const texts: string[] = []
  return { model: inner.model, dims: inner.dims, texts, embed: async (t) => { texts.push(...t); return await inner.embed(t) } }
}

describe('restarting a peer', () => {
  it('brings back its verified table and its index, with nothing re-embedded, before any connection', async () => {
    const [a, b, c] = [await peer(), await peer(), await peer()]
    await connectRing([a, b, c])
    await untilTables([a, b, c], () => [a, b, c].every(p => p.capability.agents().length === 18))
    await a.whenIndexed()
    const known = a.capability.agents().map(v => `${v.body.agent}@${v.body.version}`).sort()
    const dataDir = a.dataDir
    await stop(a)

    const embedder = counting()
    const again = await peer({ dataDir, embedder })
    await again.whenIndexed()
    expect(again.libp2p.getConnections()).toHaveLength(0)
    // Its own agents are advertised anew (one version up); everything else is exactly as it was.
    const others = (list: string[]): string[] => list.filter(x => !x.startsWith(again.peerId))
    expect(others(again.capability.agents().map(v => `${v.body.agent}@${v.body.version}`).sort())).toEqual(others(known))
    expect(again.index.size).toBe(18)
    expect(embedder.texts).toEqual([])
    const answer = await again.router.route({ text: 'put these names in alphabetical order' }, [])
    expect(answer.explanation).toMatchObject({ screened: expect.arrayContaining([expect.objectContaining({ agent: `${b.peerId}/sort` })]) })
  })

  it('never reuses a dispatch id its saved bandit still holds as pending', async () => {
    const [a, b] = [await peer(), await peer()]
    await connectRing([a, b])
    await untilTables([a, b], () => a.capability.agents().length === 12)
    await a.whenIndexed()
    // Two decisions whose dispatch never reports: they stay pending in the saved policy.
    for (let i = 0; i < 2; i++) expect((await a.router.route({ text: 'calculate', skills: ['arithmetic'] }, [])).candidates.length).toBeGreaterThan(0)
    const dataDir = a.dataDir
    await stop(a)
    const pending = (JSON.parse(await readFile(join(dataDir, 'bandit.json'), 'utf8')) as { pending?: Array<{ id: string }> }).pending ?? []
    expect(pending.map(p => p.id)).toHaveLength(2)
    const again = await peer({ dataDir })
    await again.dial([b.multiaddrs()[0]!])
    await untilTables([again, b], () => again.capability.agents().length === 12)
    await again.whenIndexed()
    const ran = await again.tasks.submit({ subtasks: [{ id: 'x', capability: { skills: ['arithmetic'] }, input: { expression: '6 * 7' } }] }).finished
    expect(ran, JSON.stringify(ran.trace)).toMatchObject({ status: 'done', outputs: { x: { value: 42 } } })
  })

  it('sets a torn reputation book and certificate file aside, says so, and never overwrites them', async () => {
    const { mkdtemp, mkdir, readFile: read } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const dataDir = await mkdtemp(join(tmpdir(), 'agentmesh-restart-torn-'))
    await mkdir(join(dataDir, 'consensus'), { recursive: true })
    const book = '{"v":1,"agents":{"x":{"agre'
    const certificates = encodeCanonical([new Uint8Array(300).fill(1), new Uint8Array(300).fill(2)]).subarray(0, 400)
    await writeFile(join(dataDir, 'consensus', 'reputation.json'), book)
    await writeFile(join(dataDir, 'consensus', 'certificates.cbor'), certificates)
    const a = await peer({ dataDir })
    const damaged = a.recovered.damaged
    expect(damaged.map(d => d.file).sort()).toEqual([join(dataDir, 'consensus', 'certificates.cbor'), join(dataDir, 'consensus', 'reputation.json')])
    for (const d of damaged) expect(d.keptAs).toMatch(/\.damaged-\d+$/)
    expect(await read(damaged.find(d => d.file.endsWith('reputation.json'))!.keptAs, 'utf8')).toBe(book)
    expect(new Uint8Array(await read(damaged.find(d => d.file.endsWith('certificates.cbor'))!.keptAs))).toEqual(certificates)
    // A book saved from now on goes to a fresh file; the damaged copies stay as they were.
    a.consensus.bookChanged()
    await stop(a)
    expect(await read(damaged.find(d => d.file.endsWith('reputation.json'))!.keptAs, 'utf8')).toBe(book)
    const again = await peer({ dataDir })
    expect(again.recovered.damaged).toEqual([])
  })

  it('verifies saved records again: a tampered one is refused', async () => {
    const [a, b] = [await peer(), await peer()]
    await connectRing([a, b])
    await untilTables([a, b], () => a.capability.agents().length === 12)
    const dataDir = a.dataDir
    await stop(a)
    const path = join(dataDir, 'table.cbor')
    const records = decodeCanonical(await readFile(path)) as Uint8Array[]
    const victim = records.findIndex(r => new TextDecoder().decode(r).includes(`${b.peerId}/sort`))
    expect(victim).toBeGreaterThanOrEqual(0)
    const record = decodeCanonical(records[victim]!) as { t: string, body: Uint8Array, sig: Uint8Array }
    const sig = record.sig.slice()
    sig[0] = sig[0]! ^ 1
    records[victim] = encodeCanonical({ ...record, sig })
    await writeFile(path, encodeCanonical(records))

    const again = await peer({ dataDir })
    const others = again.capability.agents().filter(v => v.body.agent.startsWith(b.peerId)).map(v => v.body.agent)
    expect(others).toHaveLength(5)
    expect(others).not.toContain(`${b.peerId}/sort`)
    await again.whenIndexed()
    expect(again.index.has(`${b.peerId}/sort`)).toBe(false)

  })

  describe('certificates', () => {
    /** Certificates signed with real Ed25519 keys (peers verify what they restore and fetch). */
    async function realCertificates (n: number): Promise<Uint8Array[]> {
      const signers = await Promise.all([0, 1, 2, 3].map(async () => ed25519Signer(await generateKeyPair('Ed25519'))))
      return Array.from({ length: n }, (_, i) => makeCertificate(signers, `restart/${i}`))
    }
    async function seeded (certs: Uint8Array[]): Promise<string> {
      const { mkdtemp, mkdir } = await import('node:fs/promises')
      const { tmpdir } = await import('node:os')
      const dataDir = await mkdtemp(join(tmpdir(), 'agentmesh-restart-certs-'))
      await mkdir(join(dataDir, 'consensus'), { recursive: true })
      await writeFile(join(dataDir, 'consensus', 'certificates.log'), frameAll(certs))
      return dataDir
    }
    const logOf = (dataDir: string): string => join(dataDir, 'consensus', 'certificates.log')

    it('a peer whose log lost most of its certificates fetches ALL of them back from a neighbour (not one page)', async () => {
      const certs = await realCertificates(600) // more than an old `have` (512 ids) and its reply (64)
      const a = await peer({ dataDir: await seeded(certs) })
      expect(a.consensus.certificateIds()).toHaveLength(600)
      const b = await peer()
      await connectRing([a, b])
      await until(() => b.consensus.certificateIds().length === 600, 60_000)
      const dataDir = b.dataDir
      await stop(b)
      const saved = await CertificateLog.open(logOf(dataDir))
      expect(saved.records).toHaveLength(600) // each one appended as it came
      await saved.log.close()

      // Cut the log to its first 100 records (a lost disk, a restore from an old backup).
      await writeFile(logOf(dataDir), frameAll(saved.records.slice(0, 100)))
      const again = await peer({ dataDir })
      expect(again.consensus.certificateIds()).toHaveLength(100)
      expect(again.recovered.damaged).toEqual([])
      await connectRing([a, again])
      await until(() => again.consensus.certificateIds().length === 600, 60_000)
      expect(new Set(again.consensus.certificateIds())).toEqual(new Set(a.consensus.certificateIds()))
    })

    it('migrates an old certificates.cbor into the log once, then deletes it', async () => {
      const { mkdtemp, mkdir, access } = await import('node:fs/promises')
      const { tmpdir } = await import('node:os')
      const certs = await realCertificates(30)
      const dataDir = await mkdtemp(join(tmpdir(), 'agentmesh-restart-migrate-'))
      await mkdir(join(dataDir, 'consensus'), { recursive: true })
      await writeFile(join(dataDir, 'consensus', 'certificates.cbor'), encodeCanonical(certs))
      const a = await peer({ dataDir })
      expect(a.consensus.certificateIds()).toHaveLength(30)
      expect(a.recovered.damaged).toEqual([])
      await expect(access(join(dataDir, 'consensus', 'certificates.cbor'))).rejects.toThrow(/ENOENT/)
      await stop(a)
      const again = await peer({ dataDir })
      expect(again.consensus.certificateIds()).toEqual(a.consensus.certificateIds())
      expect(again.recovered.damaged).toEqual([])
    })

    it('a torn last record is cut off, kept aside and reported; every whole one is restored', async () => {
      const certs = await realCertificates(10)
      const dataDir = await seeded(certs)
      const whole = frameAll(certs)
      await writeFile(logOf(dataDir), whole.subarray(0, whole.byteLength - 7))
      const a = await peer({ dataDir })
      expect(a.consensus.certificateIds()).toHaveLength(9)
      const damage = a.recovered.damaged.find(d => d.file === logOf(dataDir))!
      expect(damage.error).toMatch(/9 recovered, \d+ bytes dropped .*torn tail/)
      expect(new Uint8Array(await readFile(damage.keptAs))).toEqual(whole.subarray(0, whole.byteLength - 7))
      await stop(a)
      const again = await peer({ dataDir })
      expect(again.consensus.certificateIds()).toHaveLength(9)
      expect(again.recovered.damaged).toEqual([])
    })
  })
})

describe('a peer that cannot save', () => {
  it('says so through its logger (the operator\'s warn sink), naming the peer component and the reason, and still stops', async () => {
    const said: string[] = []
    const a = await peer({ warn: (component, message) => { said.push(`${component}: ${message}`) } })
    // A directory where the table file goes: the rename onto it fails, root or not.
    await mkdir(join(a.dataDir, 'table.cbor', 'blocker'), { recursive: true })
    await stop(a)
    expect(said).toEqual([expect.stringMatching(new RegExp(`^agentmesh:peer: could not save the table and index in ${a.dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*(EISDIR|ENOTEMPTY|EEXIST)`))])
  })
})
