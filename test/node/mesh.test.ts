// Real libp2p peers over TCP on 127.0.0.1: the capability protocol end to end.
import { describe, it, expect } from 'vitest'
import { lpStream } from '@libp2p/utils'
import { connectRing, untilTables } from '../../node/cli/local-mesh.ts'
import { toLocalAgent, type Peer } from '../../node/peer.ts'
import { usePeers } from '../helpers/peers.ts'
import { until as poll } from '../helpers/until.ts'
import { CAPABILITY_PROTOCOL, CAPABILITY_TOPIC, decodeRecord, gossipRecords, signVcv, type SignedVcv } from '../../protocols/capability/index.ts'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { encodeCanonical } from '../../protocols/cbor.ts'

const { peer, stop } = usePeers('agentmesh-mesh-')

const connect = connectRing
const until = untilTables

/** Resolves once `from` knows that `to` subscribes to the capability topic (so gossip reaches it). */
async function subscribed (from: Peer, to: Peer): Promise<void> {
  const pubsub = from.libp2p.services.pubsub
  const known = (): boolean => pubsub.getSubscribers(CAPABILITY_TOPIC).some(p => p.equals(to.libp2p.peerId))
  if (known()) return
  await new Promise<void>(resolve => {
    const check = (): void => { if (known()) { pubsub.removeEventListener('subscription-change', check); resolve() } }
    pubsub.addEventListener('subscription-change', check)
  })
}

const ids = (p: Peer): string[] => p.capability.agents().map(v => v.body.agent).sort()
const agentOf = (p: Peer, name: string): string => `${p.peerId}/${name}`

describe('a mesh of real peers', () => {
  it('5 peers converge: every peer knows every agent, and a new version replaces the old everywhere', async () => {
    const peers = await Promise.all([0, 1, 2, 3, 4].map(async () => await peer()))
    await connect(peers)
    await until(peers, () => peers.every(p => p.capability.agents().length === 30))
    const expected = ids(peers[0]!)
    for (const p of peers) expect(ids(p)).toEqual(expected)
    expect(new Set(expected.map(a => a.split('/')[0])).size).toBe(5)

    const id = agentOf(peers[2]!, 'arithmetic')
    const before = peers[0]!.capability.agents().find(v => v.body.agent === id)!.body.version
    const agent = toLocalAgent(peers[2]!.agents.get('arithmetic')!)
    peers[2]!.capability.advertise({ ...agent, description: 'arithmetic, now with better rounding', costPerCall: 0.05 })
    const updated = (p: Peer): SignedVcv | undefined => p.capability.agents().find(v => v.body.agent === id && v.body.version > before)
    await until(peers, () => peers.every(p => updated(p) !== undefined))
    for (const p of peers) expect(updated(p)!.body).toMatchObject({ description: 'arithmetic, now with better rounding', cost: 0.05 })
  })

  it('a late joiner converges through anti-entropy, long before any re-advertisement', async () => {
    // Re-advertisement comes after a third of the hour-long lifetime: only anti-entropy can bring
    // the late joiner the others' records before `until` gives up.
    const ttlMs = 3_600_000
    const peers = await Promise.all([0, 1, 2].map(async () => await peer({ ttlMs })))
    await connect(peers)
    await until(peers, () => peers.every(p => p.capability.agents().length === 18))
    const late = await peer({ ttlMs })
    expect(await late.dial([peers[1]!.multiaddrs()[0]!])).toEqual([])
    const all = [...peers, late]
    await until(all, () => all.every(p => p.capability.agents().length === 24))
    for (const p of all) expect(ids(p)).toEqual(ids(late))
    for (const v of late.capability.agents()) expect(v.body.version).toBe(peers[0]!.capability.agents().find(w => w.body.agent === v.body.agent)!.body.version)
  })

  it("a stopped peer's agents expire while live peers keep refreshing theirs", async () => {
    const peers = await Promise.all([0, 1, 2].map(async () => await peer({ ttlMs: 3000 })))
    await connect(peers)
    await until(peers, () => peers.every(p => p.capability.agents().length === 18))
    const gone = peers.pop()!
    const goneHost = gone.peerId
    await stop(gone)
    const expired: string[] = []
    peers[0]!.capability.addEventListener('agent:removed', e => { if (e.detail.reason === 'expired') expired.push(e.detail.agent) })
    await until(peers, () => peers.every(p => p.capability.agents().every(v => !v.body.agent.startsWith(goneHost))))
    // When they expire (exactly at expiresAt) is checked in virtual time by the table's own test
    // ('expires an entry exactly when its lifetime ends'); here, that they went by expiry.
    expect(expired.filter(a => a.startsWith(goneHost))).toHaveLength(6)
    // Survivors outlived a whole lifetime of their own VCVs: refresh works.
    for (const p of peers) expect(p.capability.agents()).toHaveLength(12)
    expect(Math.min(...peers.flatMap(p => p.capability.agents().map(v => v.body.version)))).toBeGreaterThan(1)
  })

  it('a withdrawal reaches every peer as a signed tombstone', async () => {
    const peers = await Promise.all([0, 1, 2].map(async () => await peer()))
    await connect(peers)
    await until(peers, () => peers.every(p => p.capability.agents().length === 18))
    const id = agentOf(peers[0]!, 'sort')
    const reasons: string[] = []
    peers[2]!.capability.addEventListener('agent:removed', e => { if (e.detail.agent === id) reasons.push(e.detail.reason) })
    peers[0]!.capability.withdraw('sort')
    await until(peers, () => peers.every(p => p.capability.agents().length === 17))
    expect(reasons).toEqual(['withdrawn'])
  })

  it('a restarted peer keeps its identity and moves its versions forward', async () => {
    const [a, b] = [await peer(), await peer()]
    await connect([a, b])
    await until([a, b], () => b.capability.agents().length === 12)
    const id = agentOf(a, 'summarize')
    const version = b.capability.agents().find(v => v.body.agent === id)!.body.version
    const dataDir = a.dataDir
    await stop(a)
    const again = await peer({ dataDir })
    expect(again.peerId).toBe(a.peerId)
    expect(await again.dial([b.multiaddrs()[0]!])).toEqual([])
    await until([b], () => (b.capability.agents().find(v => v.body.agent === id)?.body.version ?? 0) > version)
  })

  it('agents advertised together leave as one bundle, and their versions are on disk before it leaves', async () => {
    const [a, b] = [await peer(), await peer()]
    await connect([a, b])
    await until([b], () => b.capability.agents().length === 12)
    const pubsub = a.libp2p.services.pubsub
    const sent: Array<{ records: SignedVcv[], onDisk: Record<string, number> }> = []
    const publish = pubsub.publish.bind(pubsub)
    pubsub.publish = async (topic: string, data?: Uint8Array) => {
      // What a crash right now would leave: the versions file as it is when the bundle goes out.
      const onDisk = (JSON.parse(readFileSync(join(a.dataDir, 'state.json'), 'utf8')) as { versions: Record<string, number> }).versions
      if (topic === CAPABILITY_TOPIC && data !== undefined) sent.push({ records: gossipRecords(data).map(w => decodeRecord(w) as SignedVcv), onDisk })
      return await publish(topic, data)
    }
    const names = [...a.agents.keys()].slice(0, 3)
    for (const name of names) a.capability.advertise({ ...toLocalAgent(a.agents.get(name)!), description: `${name}, revised` })
    await until([b], () => names.every(n => b.capability.get(agentOf(a, n))?.body.description === `${n}, revised`))
    expect(sent).toHaveLength(1)
    expect(sent[0]!.records.map(r => r.body.agent).sort()).toEqual(names.map(n => agentOf(a, n)).sort())
    for (const r of sent[0]!.records) expect(sent[0]!.onDisk[r.body.agent.split('/')[1]!]).toBeGreaterThanOrEqual(r.body.version)
  })

  it('a peer dialled with keepAlive is dialled again when the link drops (a local mesh heals itself)', async () => {
    const [a, b] = [await peer(), await peer()]
    expect(await a.dial([b.multiaddrs()[0]!], undefined, { keepAlive: true })).toEqual([])
    const linked = (): boolean => a.libp2p.getConnections(b.libp2p.peerId).some(c => c.status === 'open')
    expect(linked()).toBe(true)
    // b lists the link once its side of the upgrade is done.
    await poll(() => b.libp2p.getConnections(a.libp2p.peerId).length > 0, 10_000)
    const reopened = new Promise<void>(resolve => {
      const check = (): void => { if (linked()) { a.libp2p.removeEventListener('connection:open', check); resolve() } }
      a.libp2p.addEventListener('connection:open', check)
    })
    await b.libp2p.hangUp(a.libp2p.peerId)
    await reopened
    expect(linked()).toBe(true)
  })

  it('forged gossip is rejected with a reason and never enters a table', async () => {
    const [honest, victim] = [await peer(), await peer()]
    const forger = await peer({ agents: [] })
    await connect([honest, victim, forger])
    await until([victim], () => victim.capability.agents().length === 12)
    await subscribed(forger, victim)
    const rejected: string[] = []
    victim.capability.addEventListener('rejected', e => rejected.push(e.detail.reason))
    // The forger re-signs a VCV claiming to be the honest host's, at a higher version.
    const real = victim.capability.agents().find(v => v.body.agent === agentOf(honest, 'arithmetic'))!
    const forged = { ...real.body, version: real.body.version + 100, description: 'forged' }
    const wire = encodeCanonical({ t: 'vcv', body: encodeCanonical(forged), sig: real.sig })
    await forger.libp2p.services.pubsub.publish(CAPABILITY_TOPIC, wire)
    await forger.libp2p.services.pubsub.publish(CAPABILITY_TOPIC, new TextEncoder().encode('not a record'))
    await new Promise<void>(resolve => {
      const check = (): void => { if (rejected.length >= 2) resolve() }
      victim.capability.addEventListener('rejected', check)
      check()
    })
    expect(rejected).toEqual(expect.arrayContaining(['bad signature', expect.stringMatching(/canonical CBOR/)]))
    expect(victim.capability.agents().find(v => v.body.agent === real.body.agent)!.body.description).not.toBe('forged')
    // Sanity: the forger cannot sign for the honest host at all.
    expect(() => signVcv(forged, { peerId: forger.peerId, sign: () => new Uint8Array(64) })).toThrow(/cannot sign/)
  })

  it('a peer that sends garbage on the anti-entropy stream is cut off, not left hanging', async () => {
    const [a, b] = [await peer(), await peer({ agents: [] })]
    await connect([a, b])
    const stream = await b.libp2p.dialProtocol(a.libp2p.peerId, CAPABILITY_PROTOCOL)
    const closed = new Promise<void>(resolve => { stream.addEventListener('close', () => resolve()) })
    await lpStream(stream).write(new TextEncoder().encode('garbage'))
    await closed
    expect(stream.status).not.toBe('open')
    expect(a.capability.agents()).toHaveLength(6)
  })
})
