// Tasks across real peers over TCP: DAG execution, self-healing when a host dies, escalation.
import { describe, it, expect } from 'vitest'
import { gatedAgent } from '../helpers/gated-agent.ts'
import { connectRing, untilTables } from '../../node/cli/local-mesh.ts'
import type { Peer } from '../../node/peer.ts'
import { usePeers } from '../helpers/peers.ts'
import { runTask, type DispatchOutcome, type Router } from '../../node/services/task-runner.ts'
import { parseTask } from '../../protocols/task/index.ts'

const { peer, stop } = usePeers('agentmesh-run-')

/** The simplest router: every agent in the table with the requested skills, by host id. */
function skillsRouter (p: Peer, outcomes: DispatchOutcome[] = []): Router {
  return {
    async route (request, exclude) {
      const candidates = p.capability.agents()
        .filter(v => (request.skills ?? []).every(s => v.body.skills.includes(s)) && !exclude.includes(v.body.agent))
        .sort((a, b) => a.body.agent.localeCompare(b.body.agent))
        .map(v => ({ agent: v.body.agent, cost: v.body.cost }))
      return { candidates, explanation: { candidates: candidates.map(c => c.agent) } }
    },
    outcome (o) { outcomes.push(o) }
  }
}

const execute = (p: Peer) => async (agent: string, input: unknown, ms: number, signal: AbortSignal) => await p.rpc.execute(agent, input, ms, signal)

describe('running tasks across peers', () => {
  it('a real 5-peer mesh runs a DAG with fan-out and dependencies on remote agents', async () => {
    const peers = await Promise.all([0, 1, 2, 3, 4].map(async () => await peer()))
    await connectRing(peers)
    await untilTables(peers, () => peers.every(p => p.capability.agents().length === 30))
    const requester = peers[0]!
    const spec = parseTask({
      id: 'report',
      subtasks: [
        { id: 'stats', capability: { skills: ['word-count'] }, input: { text: 'Peers gossip. Agents answer. Peers agree on answers.' } },
        { id: 'math', capability: { skills: ['arithmetic'] }, input: { expression: '2 ^ 10' } },
        // The two most frequent words ("peers" twice, then "agents", first of the ties), sorted.
        { id: 'top', capability: { skills: ['sort'] }, input: { items: [{ $from: 'stats', path: '/topWords/0/word' }, { $from: 'stats', path: '/topWords/1/word' }] } },
        { id: 'pick', capability: { skills: ['json'] }, input: { data: { words: { $from: 'stats', path: '/words' }, power: { $from: 'math', path: '/value' } }, pick: ['power', 'words'] } }
      ]
    })
    const report = await runTask(spec, { router: skillsRouter(requester), execute: execute(requester) }).finished
    expect(report.status).toBe('done')
    expect(report.result).toEqual({ top: { items: ['agents', 'peers'], count: 2 }, pick: { result: { power: 1024, words: 8 } } })
    // Both branches ran on remote hosts chosen by the router, each dispatch recorded.
    expect(report.trace.filter(t => t.kind === 'dispatch')).toHaveLength(4)
  })

  it('reroutes when the host running a subtask dies, and the task still completes', async () => {
    const gates = [0, 1, 2].map(() => gatedAgent('slow', { capacity: 4, skills: ['slow'] }))
    const peers = [await peer({ agents: [] }), ...await Promise.all(gates.map(async g => await peer({ agents: [], customAgents: [g] })))]
    await connectRing(peers)
    await untilTables(peers, () => peers.every(p => p.capability.agents().length === 3))
    const requester = peers[0]!
    const outcomes: DispatchOutcome[] = []
    const run = runTask(parseTask({ subtasks: [{ id: 'step', capability: { skills: ['slow'] }, input: { n: 1 }, deadlineMs: 20_000 }] }),
      { router: skillsRouter(requester, outcomes), execute: execute(requester) })
    // Wait for the first choice to start, then kill its host.
    await Promise.race(gates.map(async g => await g.whenStarted(1)))
    const victim = gates.findIndex(g => g.started > 0)
    const victimPeer = peers[victim + 1]!
    await stop(victimPeer)
    await Promise.race(gates.filter((_, i) => i !== victim).map(async g => await g.whenStarted(1)))
    gates.forEach(g => g.release())
    const report = await run.finished
    expect(report.status).toBe('done')
    expect(report.result).toEqual({ step: { echo: { n: 1 } } })
    const reroute = report.trace.find(t => t.kind === 'reroute')!
    expect(reroute.agent).toBe(`${victimPeer.peerId}/slow`)
    expect(reroute.reason).toMatch(/unavailable|cancelled/)
    expect(outcomes.map(o => o.result.ok)).toEqual([false, true])
  })

  it('escalates with the reason when every host of the needed agent dies mid-task', async () => {
    const gates = [0, 1].map(() => gatedAgent('slow', { capacity: 4, skills: ['slow'] }))
    const peers = [await peer({ agents: [] }), ...await Promise.all(gates.map(async g => await peer({ agents: [], customAgents: [g] })))]
    await connectRing(peers)
    await untilTables(peers, () => peers.every(p => p.capability.agents().length === 2))
    const requester = peers[0]!
    const run = runTask(parseTask({ subtasks: [{ id: 'step', capability: { skills: ['slow'] }, input: {} }] }),
      { router: skillsRouter(requester), execute: execute(requester) })
    await Promise.race(gates.map(async g => await g.whenStarted(1)))
    for (const host of peers.slice(1)) {
      await stop(host)
    }
    const report = await run.finished
    expect(report.status).toBe('escalated')
    expect(report.reason).toMatch(/subtask "step": no (usable agent|agent left)/)
    // Each failure is visible: one reroute per lost host, then the escalation.
    expect(report.trace.filter(t => t.kind === 'reroute').length).toBeGreaterThanOrEqual(1)
    expect(report.trace.at(-1)).toMatchObject({ kind: 'escalate', subtask: 'step' })
  })

  it('escalates with the reason when no agent can do a subtask', async () => {
    const peers = await Promise.all([0, 1].map(async () => await peer()))
    await connectRing(peers)
    await untilTables(peers, () => peers.every(p => p.capability.agents().length === 12))
    const report = await runTask(parseTask({ subtasks: [
      { id: 'ok', capability: { skills: ['arithmetic'] }, input: { expression: '1+1' } },
      { id: 'poem', capability: { skills: ['poetry'] }, input: {}, dependsOn: ['ok'] }
    ] }), { router: skillsRouter(peers[0]!), execute: execute(peers[0]!) }).finished
    expect(report.status).toBe('escalated')
    expect(report.reason).toMatch(/subtask "poem": no usable agent/)
    expect(report.outputs).toEqual({ ok: { value: 2 } })
    expect(report.trace.at(-1)).toMatchObject({ kind: 'escalate', subtask: 'poem' })
  })
})
