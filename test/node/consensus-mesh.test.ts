// Committees of real libp2p peers on 127.0.0.1: executors' hosts sign their answers, the committee
// commits with a certificate, certificates are gossiped, and a peer that was down catches up.
import { describe, it, expect } from 'vitest'
import { toString } from 'uint8arrays'
import { canonicalJson, sha256 } from '../../protocols/hash.ts'
import { certificateFromJson, verifyCertificate } from '../../protocols/consensus/index.ts'
import { startApi } from '../../node/api/api.ts'
import { ed25519Verifier } from '../../node/network/crypto.ts'
import type { Peer } from '../../node/peer.ts'
import { usePeers } from '../helpers/peers.ts'
import { until } from '../helpers/until.ts'
import { createAgent } from '../../node/agents/registry.ts'
import type { Agent } from '../../node/agents/agent.ts'

const { peer, stop } = usePeers('agentmesh-consensus-')

async function fullMesh (peers: Peer[]): Promise<void> {
  await Promise.all(peers.map(async (p, i) => {
    const failures = await p.dial(peers.slice(i + 1).map(q => q.multiaddrs()[0]!))
    if (failures.length > 0) throw new Error(failures.map(f => f.error).join('; '))
  }))
}

/** Runs `arithmetic` on each executor peer with a signed answer, then consensus from `requester`. */
async function commit (requester: Peer, executors: Peer[], expression: string, subtask: string, candidates: Peer[] = []) {
  const input = { expression }
  const inputHash = toString(sha256(canonicalJson(input)), 'base16')
  const results = await Promise.all(executors.map(async e => await requester.rpc.execute(`${e.peerId}/arithmetic`, input, 5000, undefined, { subtask, inputHash })))
  const answers = results.map(r => {
    if (!r.ok || r.answer === undefined) throw new Error(`execution failed: ${JSON.stringify(r)}`)
    return r.answer
  })
  const statement = requester.consensus.committee({ subtask, inputHash, executors: executors.map(e => `${e.peerId}/arithmetic`), candidates: candidates.map(c => c.peerId) })
  return await requester.consensus.run(statement, answers, 20_000)
}

describe('consensus over libp2p', () => {
  it('a committee of 4 commits, every peer receives the certificate by gossip, and reputations agree', async () => {
    const peers = await Promise.all(Array.from({ length: 6 }, async () => await peer()))
    await fullMesh(peers)
    const { certificate, summary } = await commit(peers[0]!, peers.slice(0, 4), '6 * 7', 'mesh-4/s1')
    expect(summary.outcome).toEqual({ kind: 'answer', answer: { value: 42 } })
    expect(summary.agreed).toHaveLength(4)
    expect(verifyCertificate(certificate, ed25519Verifier()).ok).toBe(true)
    const id = summary.instance
    // Members and the two bystanders all end up holding it, and compute the same reputation.
    await until(() => peers.every(p => p.consensus.certificateIds().includes(id)))
    const books = peers.map(p => JSON.stringify(p.consensus.book.toJSON()))
    expect(new Set(books).size).toBe(1)
    expect(peers[5]!.consensus.book.counts(`${peers[1]!.peerId}/arithmetic`).agreed).toBe(1)
    // The consensus service is a libp2p service, its metrics registered through the node's metrics component.
    expect(peers[5]!.libp2p.services.consensus).toBe(peers[5]!.consensus)
    const text = await peers[5]!.metrics.text()
    expect(text).toMatch(/^agentmesh_consensus_certificates 1$/m)
    expect(text).toMatch(/^agentmesh_certificate_log_failures 0$/m)
  }, 60_000)

  it('a committee of 7 commits, and a peer that was down accepts the certificate it missed', async () => {
    const peers = await Promise.all(Array.from({ length: 8 }, async () => await peer()))
    await fullMesh(peers)
    const late = peers[7]!
    const lateDir = late.dataDir
    await stop(late)
    const { certificate, summary } = await commit(peers[0]!, peers.slice(0, 7), '2 ^ 10', 'mesh-7/s1')
    expect(summary.outcome).toEqual({ kind: 'answer', answer: { value: 1024 } })
    expect(verifyCertificate(certificate, ed25519Verifier()).ok).toBe(true)
    expect(summary.total).toBeGreaterThan(0)
    const id = summary.instance
    await until(() => peers.slice(0, 7).every(p => p.consensus.certificateIds().includes(id)))

    const back = await peer({ dataDir: lateDir })
    expect(back.consensus.certificateIds()).not.toContain(id)
    await back.dial([peers[0]!.multiaddrs()[0]!])
    await until(() => back.consensus.certificateIds().includes(id))
    expect(JSON.stringify(back.consensus.book.toJSON())).toBe(JSON.stringify(peers[3]!.consensus.book.toJSON()))
  }, 90_000)

  it('a trusted subtask in a task runs on every arithmetic agent, a confident liar is outvoted, and its reputation drops everywhere', async () => {
    // The liar describes itself exactly like the real calculator and claims full confidence.
    const honest = createAgent({ kind: 'arithmetic' })
    const liar: Agent = { describe: () => honest.describe(), handle: async () => ({ output: { value: 41 }, confidence: 1 }) }
    const peers = [
      ...await Promise.all(Array.from({ length: 4 }, async () => await peer())),
      await peer({ agents: [], customAgents: [liar] })
    ]
    await fullMesh(peers)
    const liarId = `${peers[4]!.peerId}/arithmetic`
    await until(() => peers.every(p => p.capability.agents().filter(v => v.body.agent.endsWith('/arithmetic')).length === 5))
    await peers[0]!.whenIndexed()
    const run = peers[0]!.tasks.submit({
      id: 'trusted',
      subtasks: [{ id: 'sum', capability: { text: 'calculate 6 * 7', skills: ['arithmetic'] }, input: { expression: '6 * 7' }, redundancy: 5, trust: true }]
    })
    const report = await run.finished
    expect(report.status, report.reason).toBe('done')
    expect(report.result).toEqual({ sum: { value: 42 } })
    const agreed = report.trace.find(t => t.kind === 'agree')
    expect(agreed?.detail).toMatchObject({ disagreed: [liarId] })
    const instance = (agreed!.detail as { certificate: string }).certificate
    await until(() => peers.every(p => p.consensus.certificateIds().includes(instance)))
    // Any peer serves it in the JSON form `agentmesh verify` reads.
    const api = await startApi(peers[3]!, 0)
    try {
      const served = await (await fetch(`http://127.0.0.1:${api.port}/certificates/${instance}`)).json()
      expect(verifyCertificate(certificateFromJson(served), ed25519Verifier())).toMatchObject({ ok: true, summary: { instance, outcome: { kind: 'answer', answer: { value: 42 } } } })
      expect((await fetch(`http://127.0.0.1:${api.port}/certificates/${'0'.repeat(64)}`)).status).toBe(404)
    } finally {
      await api.close()
    }
    for (const p of peers) {
      expect(p.consensus.book.counts(liarId).disagreed).toBe(1)
      expect(p.consensus.book.reputation(liarId)).toBeLessThan(p.consensus.book.reputation(`${peers[1]!.peerId}/arithmetic`))
    }
  }, 60_000)
})
