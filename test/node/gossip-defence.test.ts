// Defences against a rogue peer, on real peers over TCP on 127.0.0.1: a rogue built from our own
// peer code that publishes junk on the certificate topic, is proven to equivocate, or floods a host
// with requests is graylisted or found abusive, hung up on and refused; honest peers stay linked.
import { describe, expect, it } from 'vitest'
import { lpStream } from '@libp2p/utils'
import { connectRing } from '../../node/cli/local-mesh.ts'
import { networkIds, LOCAL_NETWORK } from '../../protocols/network/index.ts'
import type { Peer } from '../../node/peer.ts'
import type { Refusal } from '../../node/network/guard.ts'
import { gossipScore } from '../../node/network/gossip.ts'
import { PeerLimits } from '../../node/network/peer-limits.ts'
import { usePeers } from '../helpers/peers.ts'
import { until } from '../helpers/until.ts'

const { peer } = usePeers('agentmesh-defence-')
const WAIT_MS = 20_000
const topics = networkIds(LOCAL_NETWORK)

/** Resolves with `p`'s refusal of `other`, as soon as it is made. */
function refusalOf (p: Peer, other: Peer): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no refusal within ${WAIT_MS} ms; score ${String(gossipScore(p.libp2p.services.pubsub, other.peerId))}`)) }, WAIT_MS)
    const previous = p.guard.onRefused
    p.guard.onRefused = r => {
      previous?.(r)
      if (r.peer === other.peerId) { clearTimeout(timer); resolve(r) }
    }
  })
}

const connected = (a: Peer, b: Peer): boolean => a.libp2p.getConnections(b.libp2p.peerId).some(c => c.status === 'open')

/** Resolves once `from` sees `to` subscribed to `topic`, so what `from` publishes there reaches `to`. */
async function subscribed (from: Peer, to: Peer, topic: string): Promise<void> {
  await until(() => from.libp2p.services.pubsub.getSubscribers(topic).some(id => id.equals(to.libp2p.peerId)), WAIT_MS)
}

async function mesh (): Promise<{ a: Peer, b: Peer, rogue: Peer }> {
  const [a, b, rogue] = await Promise.all([peer(), peer(), peer()])
  await connectRing([a!, b!, rogue!])
  for (const p of [a!, b!]) await subscribed(rogue!, p, topics.certificateTopic)
  return { a: a!, b: b!, rogue: rogue! }
}

describe('gossip scoring against a rogue peer', { timeout: 90_000 }, () => {
  it('junk on the certificate topic: every honest peer refuses the rogue with the score as reason; honest peers stay linked', async () => {
    const { a, b, rogue } = await mesh()
    const refused = [refusalOf(a, rogue), refusalOf(b, rogue)]
    // Junk the certificate validator rejects: not CBOR, and CBOR that is no certificate. Sent in
    // batches until both have refused: a publish before the rogue's gossip stream to a peer is
    // open reaches nobody, and when that stream opens is up to gossipsub.
    let both = false
    const all = Promise.all(refused).finally(() => { both = true })
    for (let i = 0; !both && i < 10_000; i++) {
      const junk = i % 2 === 0 ? new Uint8Array([0xff, 0xfe, i & 0xff, i >> 8, 2, 3]) : new Uint8Array([0xa1, 0x61, 0x74, 0x61, 0x78, i & 0xff, i >> 8])
      await rogue.libp2p.services.pubsub.publish(topics.certificateTopic, junk).catch(() => {})
      if (i % 20 === 19) await new Promise(resolve => setTimeout(resolve, 100))
    }
    for (const r of await all) expect(r.reason).toMatch(/gossip score -?\d+ is below the graylist threshold/)
    await until(() => !connected(a, rogue) && !connected(b, rogue), WAIT_MS)
    // Refused both ways: the rogue cannot come back for a while.
    expect(await a.dial(rogue.multiaddrs().slice(0, 1))).toHaveLength(1)
    // Its own dial may complete the handshake before a's gater closes it: what counts is that it does not stay.
    await rogue.dial(a.multiaddrs().slice(0, 1))
    await until(() => !connected(a, rogue) && !connected(rogue, a), WAIT_MS)
    expect(connected(a, b)).toBe(true)
    expect(a.guard.refusal(b.peerId)).toBeUndefined()
  })

  it('a host proven to equivocate is graylisted by its application score and refused', async () => {
    const { a, b, rogue } = await mesh()
    const refused = refusalOf(a, rogue)
    // What a verified equivocation proof does to the book (protocols/consensus/evidence.ts checks the proof).
    a.consensus.book.equivocation({ id: 'proof-1', host: rogue.peerId })
    expect((await refused).reason).toMatch(/below the graylist threshold/)
    await until(() => !connected(a, rogue), WAIT_MS)
    expect(connected(a, b)).toBe(true)
    // b holds no proof: it keeps its link.
    expect(b.guard.refusal(rogue.peerId)).toBeUndefined()
  })
})

describe('request budgets', { timeout: 90_000 }, () => {
  it('budgets count per peer and per kind, and a peer ten times over its budget is reported once', () => {
    const abused: string[] = []
    const limits = new PeerLimits({ rates: { execute: 5 }, onAbuse: (peer, reason) => { abused.push(`${peer}: ${reason}`) } })
    const allowed = Array.from({ length: 8 }, () => limits.allow('p1', 'execute')).filter(Boolean).length
    expect(allowed).toBe(5)
    expect(limits.allow('p2', 'execute')).toBe(true) // another peer has its own budget
    expect(limits.allow('p1', 'beacon')).toBe(true) // and another kind
    for (let i = 0; i < 60; i++) limits.allow('p1', 'execute')
    expect(abused).toEqual(['p1: more than 10× its budget of 5 execute requests per second'])
  })

  it('a peer that keeps sending garbage RPC frames is refused', async () => {
    const [host, rogue] = await Promise.all([peer(), peer()])
    await connectRing([host!, rogue!])
    const refused = refusalOf(host!, rogue!)
    let sent = 0
    // Each garbage frame costs the rogue its stream; it opens another, as an attacker would.
    while (host!.guard.refusal(rogue!.peerId) === undefined && sent < 200) {
      try {
        const stream = await rogue!.libp2p.dialProtocol(host!.libp2p.peerId, topics.rpcProtocol)
        await lpStream(stream).write(new Uint8Array([0xff, 0x00, sent & 0xff]))
        sent++
      } catch {
        break // hung up on
      }
    }
    expect((await refused).reason).toMatch(/budget of 2 invalid requests per second/)
    await until(() => !connected(host!, rogue!), WAIT_MS)
  })

  it('a flood of executions is answered "rate limited", then the flooder is hung up on and refused', async () => {
    const [host, other, rogue] = await Promise.all([peer(), peer(), peer()])
    await connectRing([host!, other!, rogue!])
    const refused = refusalOf(host!, rogue!)
    const agent = `${host!.peerId}/arithmetic`
    const results = await Promise.all(Array.from({ length: 1000 }, async () => await rogue!.rpc.execute(agent, { expression: '1+1' }, 20_000)))
    const limited = results.filter(r => !r.ok && r.error.startsWith('rate limited'))
    expect(limited.length).toBeGreaterThan(0)
    expect(results.filter(r => r.ok).length).toBeGreaterThan(0)
    expect((await refused).reason).toMatch(/more than 10× its budget of \d+ execute requests per second/)
    await until(() => !connected(host!, rogue!), WAIT_MS)
    // The honest peer still gets its calls served.
    expect(await other!.rpc.execute(agent, { expression: '6*7' }, 10_000)).toMatchObject({ ok: true, output: { value: 42 } })
  })
})
