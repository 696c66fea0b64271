// The open network on real libp2p peers over TCP on 127.0.0.1: network names keep networks apart,
// a private network's key keeps strangers out, a public node relays agent-sized answers for peers
// that cannot reach each other directly. (The WebRTC upgrade needs two NATs and STUN: the lab's job.)
import { describe, expect, it } from 'vitest'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Agent } from '../../node/agents/agent.ts'
import type { NetworkSettings } from '../../node/network/settings.ts'
import { PeerStartError } from '../../node/peer.ts'
import { connectionsView, networkStatus } from '../../node/network/status.ts'
import type { NetworkSpec } from '../../protocols/network/index.ts'
import { idWorkBits } from '../../protocols/identity.ts'
import { usePeers } from '../helpers/peers.ts'
import { until } from '../helpers/until.ts'

const spec = (name: string, extra: Partial<NetworkSpec> = {}): NetworkSpec => ({ name, bootstrap: [], stun: [], privateAddresses: true, ...extra })
const member = (name: string, extra: Partial<NetworkSpec> = {}): NetworkSettings => ({ network: spec(name, extra), public: false, announce: [] })

/** Answers with `bytes` of text: bigger than the relay package's default 128 KiB cut. */
function bigAgent (bytes: number): Agent {
  return {
    describe: () => ({ name: 'big', description: 'returns a large document', skills: ['big'], inputSchema: {}, outputSchema: {}, costPerCall: 1, latencyMs: 5, capacity: 4, policy: [] }),
    handle: async () => ({ output: { text: 'x'.repeat(bytes) }, confidence: 1 })
  } as unknown as Agent
}

describe('network names and keys', () => {
  const { peer, stop } = usePeers('agentmesh-net-')

  it('a peer of another network is refused with a reason, and no record crosses', async () => {
    const a = await peer({ network: member('alpha') })
    const b = await peer({ network: member('beta') })
    const refused = new Promise<string>(resolve => { b.guard.onRefused = r => resolve(r.reason) })
    await b.dial([a.multiaddrs()[0]!])
    expect(await refused).toContain('peer of network "alpha", not "beta"')
    await until(() => b.libp2p.getConnections().length === 0)
    // Refused both ways while it lasts: a new dial is denied by the gater.
    expect((await b.dial([a.multiaddrs()[0]!]))[0]?.error).toBeDefined()
    expect(b.capability.agents().every(v => v.body.agent.startsWith(b.peerId))).toBe(true)
    expect(a.capability.agents().every(v => v.body.agent.startsWith(a.peerId))).toBe(true)
    const c = await peer({ network: member('alpha') })
    expect(await c.dial([a.multiaddrs()[0]!])).toEqual([])
    await until(() => c.capability.agents().length === 12)
  }, 60_000)

  it('a private network: the same key connects, another key or none cannot', async () => {
    const key = new Uint8Array(32).fill(7)
    const other = new Uint8Array(32).fill(9)
    const a = await peer({ network: member('private', { psk: key }) })
    const b = await peer({ network: member('private', { psk: key }) })
    const c = await peer({ network: member('private', { psk: other }) })
    const d = await peer({ network: member('private') })
    expect(await b.dial([a.multiaddrs()[0]!])).toEqual([])
    expect(await c.dial([a.multiaddrs()[0]!], 3000)).toHaveLength(1)
    expect(await d.dial([a.multiaddrs()[0]!], 3000)).toHaveLength(1)
    await until(() => b.capability.agents().length === 12)
    expect(a.libp2p.getConnections().map(x => x.remotePeer.toString())).toEqual([b.peerId])
  }, 60_000)

  it('proof of work on peer ids: members make identities with it and connect; a peer without it is refused both ways and its records go nowhere', async () => {
    const a = await peer({ network: member('worked', { idWorkBits: 8 }) })
    const b = await peer({ network: member('worked', { idWorkBits: 8 }) })
    expect(idWorkBits(a.peerId)).toBeGreaterThanOrEqual(8)
    expect(await b.dial([a.multiaddrs()[0]!])).toEqual([])
    await until(() => b.capability.agents().length === 12)
    // The same network without the requirement, and an identity without the work (a fresh
    // identity has 8 bits with odds 1 in 256: draw until it has fewer).
    let dir = await mkdtemp(join(tmpdir(), 'agentmesh-work-'))
    let c = await peer({ dataDir: dir, network: member('worked') })
    while (idWorkBits(c.peerId) >= 8) {
      await stop(c)
      dir = await mkdtemp(join(tmpdir(), 'agentmesh-work-'))
      c = await peer({ dataDir: dir, network: member('worked') })
    }
    // c's dial may complete its handshake before a's gater hangs up: what counts is that a keeps no
    // connection to c, refuses to dial it, and never holds its agents.
    await c.dial([a.multiaddrs()[0]!], 3000)
    expect(a.guard.refusal(c.peerId)?.reason).toMatch(/less than the network's 8 bits of proof of work/)
    expect((await a.dial([c.multiaddrs()[0]!], 3000))[0]?.error).toBeDefined()
    await until(() => !a.libp2p.getConnections().some(x => x.remotePeer.toString() === c.peerId))
    expect(a.capability.agents().some(v => v.body.agent.startsWith(c.peerId))).toBe(false)
    // An identity saved without the work cannot join a network that asks for it.
    await stop(c)
    await expect(peer({ dataDir: dir, network: member('worked', { idWorkBits: 8 }) })).rejects.toThrow(/bits of proof of work; this network asks for 8/)
  }, 60_000)

  it('one running peer per data directory, with the reason and --data in the message', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agentmesh-lock-'))
    const first = await peer({ dataDir: dir })
    const second = peer({ dataDir: dir })
    await expect(second).rejects.toThrow(PeerStartError)
    await expect(second).rejects.toThrow(/already used by another peer.*--data DIR/)
    await stop(first)
    const again = await peer({ dataDir: dir })
    expect(again.peerId).toBe(first.peerId)
  }, 30_000)
})

describe('relays and the direct path', () => {
  const { peer } = usePeers('agentmesh-relay-')

  it('two peers that only know a public node reach each other through its relay, with a 600 KiB answer (the package default would cut it at 128 KiB)', async () => {
    const seed = await peer({ network: { network: spec('relaynet'), public: true, announce: [] } })
    const seedAddr = seed.multiaddrs().find(a => a.includes('/tcp/'))!
    // No TCP listener: like a peer behind NAT, it can dial out but nobody can dial it directly.
    const b = await peer({ network: member('relaynet'), listen: [], agents: [], customAgents: [bigAgent(600 * 1024)] })
    const c = await peer({ network: member('relaynet'), listen: [], agents: [], customAgents: [bigAgent(10)] })
    for (const p of [b, c]) expect(await p.dial([seedAddr])).toEqual([])
    // Each takes a reservation on the seed: its relayed address appears.
    await until(() => [b, c].every(p => networkStatus(p.libp2p, p.network).relayReservations.includes(seed.peerId)), 30_000)
    expect(networkStatus(b.libp2p, b.network).reachability.kind).toBe('relayed')
    const circuit = b.multiaddrs().find(a => a.includes('/p2p-circuit/p2p/'))!
    await c.libp2p.dial((await import('@multiformats/multiaddr')).multiaddr(circuit))
    expect(connectionsView(c.libp2p).find(v => v.peerId === b.peerId)?.kind).toBe('relayed')
    const result = await c.rpc.execute(`${b.peerId}/big`, {}, 20_000)
    expect(result.ok, result.ok ? '' : result.error).toBe(true)
    expect(((result as { output: { text: string } }).output.text).length).toBe(600 * 1024)
    // A second call reuses the relayed stream.
    expect((await c.rpc.execute(`${b.peerId}/big`, {}, 20_000)).ok).toBe(true)
  }, 90_000)
})
