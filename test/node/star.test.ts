// Star bootstrap: every peer dials one seed and nothing else. Committee members and agent hosts
// that are not neighbours must be found (DHT peer routing) and dialled on demand.
import { describe, expect, it } from 'vitest'
import { usePeers } from '../helpers/peers.ts'
import { until } from '../helpers/until.ts'

describe('a star of 8 local peers', () => {
  const { peer } = usePeers('agentmesh-star-')

  it('trusted tasks commit although committee members were never neighbours', async () => {
    const peers = await Promise.all(Array.from({ length: 8 }, async () => await peer()))
    const seed = peers[0]!
    for (const p of peers.slice(1)) expect(await p.dial([seed.multiaddrs()[0]!])).toEqual([])
    const total = peers.length * peers[0]!.agents.size
    await until(() => peers.every(p => p.capability.agents().length === total), 30_000)
    // The seed's DHT routing table holds every peer: that is what lets a peer find the others by id.
    const table = (p: (typeof peers)[number]): number => (p.libp2p.services.dht as { routingTable: { size: number } }).routingTable.size
    await until(() => table(seed) === peers.length - 1, 30_000)
    const requester = peers[7]!
    await requester.whenIndexed()
    // It dialled only the seed; a DHT table refresh elsewhere may have dialled it since (timing under load), but never all.
    const neighboursBefore = new Set(requester.libp2p.getConnections().map(c => c.remotePeer.toString()))
    expect(neighboursBefore.has(seed.peerId)).toBe(true)
    expect(neighboursBefore.size).toBeLessThan(peers.length - 2)

    for (const [i, expression] of ['6 * 7', '2 ^ 10', '(1 + 2) * 3'].entries()) {
      const run = requester.tasks.submit({
        id: `star-${i}`,
        subtasks: [{ id: 'calc', capability: { text: 'calculate', skills: ['arithmetic'] }, input: { expression }, redundancy: 3, trust: { committee: 5 } }]
      })
      const report = await run.finished
      expect(report.status, `${report.reason} ${JSON.stringify(report.trace).slice(0, 1500)}`).toBe('done')
      const agreed = report.trace.find(t => t.kind === 'agree')
      expect(agreed?.detail).toMatchObject({ committee: 5 })
    }
    // The requester now talks to peers it was never told about.
    const neighboursAfter = new Set(requester.libp2p.getConnections().map(c => c.remotePeer.toString()))
    expect([...neighboursAfter].filter(p => !neighboursBefore.has(p)).length).toBeGreaterThanOrEqual(2)
  }, 120_000)
})
