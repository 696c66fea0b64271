// Beacons and remote execution: the agent host on its own, then real peers over TCP on 127.0.0.1.
import { describe, it, expect } from 'vitest'
import { lpStream } from '@libp2p/utils'
import { AgentHost } from '../../node/services/agent-host.ts'
import type { Agent } from '../../node/agents/agent.ts'
import { gatedAgent } from '../helpers/gated-agent.ts'
import { connectRing } from '../../node/cli/local-mesh.ts'
import { usePeers } from '../helpers/peers.ts'
import { RPC_PROTOCOL, rpcLimits } from '../../protocols/rpc/index.ts'

describe('agent host', () => {
  it('runs at most `capacity` calls at once, queues the rest, and reports load and queue', async () => {
    const gated = gatedAgent('gate', { capacity: 2 })
    const host = new AgentHost(new Map([['gate', gated]]))
    const calls = [1, 2, 3].map(async i => await host.run('gate', { i }, 5000))
    await gated.whenStarted(2)
    expect(host.liveState('gate')).toMatchObject({ load: 1, queue: 1, available: true, latencyMs: 5 })
    expect(gated.started).toBe(2)
    gated.release()
    await gated.whenStarted(3)
    gated.release()
    const results = await Promise.all(calls)
    expect(results.map(r => r.ok && r.output)).toEqual([{ echo: { i: 1 } }, { echo: { i: 2 } }, { echo: { i: 3 } }])
    expect(results[0]).toMatchObject({ confidence: 0.7 })
    expect(host.liveState('gate')).toMatchObject({ load: 0, queue: 0 })
  })

  it('times out at the deadline, aborting the agent, and says why each call failed', async () => {
    const gated = gatedAgent('gate')
    const host = new AgentHost(new Map<string, Agent>([['gate', gated]]))
    expect(await host.run('gate', {}, 30)).toEqual({ ok: false, kind: 'timeout', error: 'deadline passed' })
    expect(gated.aborted).toBe(1)
    expect(await host.run('nobody', {}, 30)).toMatchObject({ ok: false, kind: 'unavailable' })
    const controller = new AbortController()
    const pending = host.run('gate', {}, 5000, controller.signal)
    controller.abort(new Error('user changed their mind'))
    expect(await pending).toEqual({ ok: false, kind: 'cancelled', error: 'user changed their mind' })
  })
})

describe('rpc between real peers', () => {
  const { peer, stop } = usePeers('agentmesh-rpc-')

  it('executes a remote agent, and reports input errors and unknown agents by kind', async () => {
    const [a, b] = [await peer(), await peer()]
    await connectRing([a, b])
    const ok = await a.rpc.execute(`${b.peerId}/arithmetic`, { expression: '6 * (3 + 4)' }, 5000)
    expect(ok).toMatchObject({ ok: true, output: { value: 42 }, confidence: 1 })
    const bad = await a.rpc.execute(`${b.peerId}/arithmetic`, { expression: '6 * (' }, 5000)
    expect(bad).toMatchObject({ ok: false, kind: 'input' })
    expect(await a.rpc.execute(`${b.peerId}/poetry`, {}, 5000)).toMatchObject({ ok: false, kind: 'unavailable', error: 'no agent named "poetry" on this host' })
    // Its own agents run in-process.
    expect(await a.rpc.execute(`${a.peerId}/sort`, { items: [3, 1, 2] }, 5000)).toMatchObject({ ok: true, output: { items: [1, 2, 3] } })
  })

  it('times out and cancels remotely: the remote agent is aborted, not left running', async () => {
    const gated = gatedAgent('gate')
    const [a, b] = [await peer({ agents: [] }), await peer({ agents: [], customAgents: [gated] })]
    await connectRing([a, b])
    const result = await a.rpc.execute(`${b.peerId}/gate`, { x: 1 }, 50)
    expect(result).toMatchObject({ ok: false, kind: 'timeout' })
    expect(gated.aborted).toBe(1)
    const controller = new AbortController()
    const pending = a.rpc.execute(`${b.peerId}/gate`, {}, 10_000, controller.signal)
    await gated.whenStarted(2)
    controller.abort()
    expect(await pending).toMatchObject({ ok: false, kind: 'cancelled' })
    await gated.whenAborted(2)
  })

  it('beacons report live load, and a host that is gone is skipped at the deadline', async () => {
    const gated = gatedAgent('gate', { capacity: 2 })
    const [a, b, c] = [await peer({ agents: [] }), await peer({ agents: [], customAgents: [gated] }), await peer()]
    await connectRing([a, b, c])
    const busy = a.rpc.execute(`${b.peerId}/gate`, {}, 10_000)
    await gated.whenStarted(1)
    const live = await a.rpc.beacon([`${b.peerId}/gate`, `${c.peerId}/sort`, `${c.peerId}/nothing`], 2000)
    expect(live.states.get(`${b.peerId}/gate`)).toMatchObject({ load: 0.5, queue: 0, available: true })
    expect(live.states.get(`${c.peerId}/sort`)).toMatchObject({ load: 0, available: true })
    expect(live.skipped).toEqual([`${c.peerId}/nothing`])
    gated.release()
    expect(await busy).toMatchObject({ ok: true })

    await stop(c)
    const partial = await a.rpc.beacon([`${b.peerId}/gate`, `${c.peerId}/sort`], 300)
    expect([...partial.states.keys()]).toEqual([`${b.peerId}/gate`])
    expect(partial.skipped).toEqual([`${c.peerId}/sort`])
  })

  it('a host that dies mid-call is reported at once, not at the deadline', async () => {
    const gated = gatedAgent('gate')
    const [a, b] = [await peer({ agents: [] }), await peer({ agents: [], customAgents: [gated] })]
    await connectRing([a, b])
    // A deadline far past the test's own timeout: only the lost connection can end this call in time.
    const pending = a.rpc.execute(`${b.peerId}/gate`, {}, 600_000)
    await gated.whenStarted(1)
    await stop(b)
    const result = await pending
    // Either the host's last words (its call was cancelled as it stopped) or the lost connection.
    expect(result).toMatchObject({ ok: false, kind: expect.stringMatching(/^(unavailable|cancelled)$/) })
  })

  it('garbage on the rpc stream closes it with the reason', async () => {
    const [a, b] = [await peer(), await peer({ agents: [] })]
    await connectRing([a, b])
    const stream = await b.libp2p.dialProtocol(a.libp2p.peerId, RPC_PROTOCOL)
    const closed = new Promise<void>(resolve => { stream.addEventListener('close', () => resolve()) })
    await lpStream(stream).write(new TextEncoder().encode('not cbor at all'))
    await closed
    expect(stream.status).not.toBe('open')
  })

  it('an oversized request closes the stream instead of being buffered or left hanging', async () => {
    const [a, b] = [await peer(), await peer({ agents: [] })]
    await connectRing([a, b])
    const stream = await b.libp2p.dialProtocol(a.libp2p.peerId, RPC_PROTOCOL)
    const closed = new Promise<void>(resolve => { stream.addEventListener('close', () => resolve()) })
    // Only the length prefix is needed: it announces more than the 1 MiB limit.
    await lpStream(stream).write(new Uint8Array(rpcLimits.maxMessageBytes + 1)).catch(() => {})
    await closed
    expect(stream.status).not.toBe('open')
    // The peer still serves others.
    expect(await b.rpc.execute(`${a.peerId}/sort`, { items: [2, 1] }, 5000)).toMatchObject({ ok: true, output: { items: [1, 2] } })
  })
})
