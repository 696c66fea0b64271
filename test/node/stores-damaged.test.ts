// Every file a peer keeps that does not read back is set aside (renamed, never overwritten) and
// named at start with what the peer lost; the peer starts without it and keeps working.
import { describe, it, expect } from 'vitest'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { readJoined } from '../../node/services/consensus-service.ts'
import type { Damage } from '../../node/storage/damaged.ts'
import { join } from 'node:path'
import { connectRing, untilTables } from '../../node/cli/local-mesh.ts'
import { usePeers } from '../helpers/peers.ts'

const { peer, stop } = usePeers('agentmesh-stores-')

/** The first half of a file: what a torn write leaves. */
async function tear (path: string): Promise<Buffer> {
  const bytes = await readFile(path)
  const half = bytes.subarray(0, Math.floor(bytes.length / 2))
  await writeFile(path, half)
  return half
}

describe('damaged stores', () => {
  it('sets aside a torn table, policy, version counters, index texts and index, says what each lost, and works on', async () => {
    const [a, b] = [await peer(), await peer()]
    await connectRing([a, b])
    await untilTables([a, b], () => a.capability.agents().length === 12)
    await a.whenIndexed()
    expect((await a.router.route({ text: 'calculate', skills: ['arithmetic'] }, [])).candidates.length).toBeGreaterThan(0)
    const dir = a.dataDir
    await stop(a)

    const files = ['table.cbor', 'bandit.json', 'state.json', 'index-texts.json']
    const torn = new Map<string, Buffer>()
    for (const f of files) torn.set(join(dir, f), await tear(join(dir, f)))
    const meta = (await readdir(join(dir, 'index'))).find(f => f.endsWith('.json'))!
    await tear(join(dir, 'index', meta))

    const again = await peer({ dataDir: dir })
    const damaged = again.recovered.damaged
    expect(damaged.map(d => d.file).sort()).toEqual([...torn.keys(), join(dir, 'index')].sort())
    for (const d of damaged) {
      expect(d.keptAs).toMatch(/\.damaged-\d+$/)
      expect(d.lost, d.file).toEqual(expect.any(String))
    }
    // The torn bytes are kept as they were, not overwritten by the restart's own saves.
    for (const [file, bytes] of torn) expect(await readFile(damaged.find(d => d.file === file)!.keptAs)).toEqual(bytes)
    // The peer carries on: it advertises, learns the mesh back and routes.
    await again.dial([b.multiaddrs()[0]!])
    await untilTables([again, b], () => again.capability.agents().length === 12)
    await again.whenIndexed()
    const ran = await again.tasks.submit({ subtasks: [{ id: 'x', capability: { skills: ['arithmetic'] }, input: { expression: '6 * 7' } }] }).finished
    expect(ran, JSON.stringify(ran.trace)).toMatchObject({ status: 'done', outputs: { x: { value: 42 } } })
    await stop(again)
    // Saved whole on the way down: the next start finds nothing damaged.
    const third = await peer({ dataDir: dir })
    expect(third.recovered.damaged).toEqual([])
  })

  it('a torn index shard and a damaged list of joined instances are said too; a damaged identity stops the start with the reason', async () => {
    const a = await peer()
    await a.whenIndexed()
    const dir = a.dataDir
    await stop(a)
    const shard = (await readdir(join(dir, 'index'))).find(f => /\.(hnsw|f32)$/.test(f))
    expect(shard).toBeDefined()
    await tear(join(dir, 'index', shard!))
    const id = (c: string): string => c.repeat(64)
    const joined = `${id('a')}\nnot an id\n${id('b')}\n${id('c').slice(0, 10)}`
    await writeFile(join(dir, 'consensus', 'joined.txt'), joined)

    const again = await peer({ dataDir: dir })
    const damaged = again.recovered.damaged
    expect(damaged.map(d => d.file).sort()).toEqual([join(dir, 'consensus', 'joined.txt'), join(dir, 'index')].sort())
    const j = damaged.find(d => d.file.endsWith('joined.txt'))!
    expect(j.error).toMatch(/1 of 3 lines/)
    expect(await readFile(j.keptAs, 'utf8')).toBe(joined)
    // The readable ids are kept (this peer must never sign twice in them); the torn tail is not an id.
    expect(await readFile(join(dir, 'consensus', 'joined.txt'), 'utf8')).toBe(`${id('a')}\n${id('b')}\n`)
    expect(again.index.size).toBe(again.capability.agents().length)
    await stop(again)

    const key = join(dir, 'identity.key')
    await tear(key)
    await expect(peer({ dataDir: dir })).rejects.toMatchObject({ name: 'PeerStartError', message: expect.stringMatching(/identity .* is not a valid key .* move it away/) })
  })

  it('the joined-instances list: a cut last line is said too (a truncation loses a real id), a whole one is not', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agentmesh-joined-'))
    try {
      const file = join(dir, 'joined.txt')
      const ids = ['a', 'b', 'c'].map(c => c.repeat(64))
      await writeFile(file, ids.join('\n') + '\n')
      const none: Damage[] = []
      expect(await readJoined(file, none)).toEqual(ids)
      expect(none).toEqual([])
      await writeFile(file, `${ids[0]}\n${ids[1]!.slice(0, 30)}`)
      const cut: Damage[] = []
      expect(await readJoined(file, cut)).toEqual([ids[0]])
      expect(cut).toMatchObject([{ error: expect.stringMatching(/last line is cut short/), lost: expect.any(String) }])
      expect(await readFile(file, 'utf8')).toBe(`${ids[0]}\n`)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
