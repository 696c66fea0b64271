// GET /metrics, /health and /ready through the real API of real peers over TCP on 127.0.0.1, and
// the label sets: whatever a peer writes in a reason, no new time series appears.
import { describe, it, expect, afterEach } from 'vitest'
import fc from 'fast-check'
import { startApi, type Api } from '../../node/api/api.ts'
import { connectRing, untilTables } from '../../node/cli/local-mesh.ts'
import { toLocalAgent, type Peer } from '../../node/peer.ts'
import { RESTARTED } from '../../node/services/tasks.ts'
import {
  CONSENSUS_REASONS, consensusReason, GOSSIP_REASONS, gossipReason, REFUSAL_REASONS, refusalReason, TASK_REASONS, taskReason
} from '../../node/services/metric-labels.ts'
import { gossipsubRegister } from '../../node/services/gossipsub-register.ts'
import { encodeCanonical } from '../../protocols/cbor.ts'
import { Registry } from 'prom-client'
import { usePeers } from '../helpers/peers.ts'

const { peer } = usePeers('agentmesh-metrics-')
const apis: Api[] = []
afterEach(async () => { await Promise.all(apis.splice(0).map(async a => { await a.close() })) })

async function api (p: Peer): Promise<Api> {
  const a = await startApi(p, { port: 0 })
  apis.push(a)
  return a
}

async function get (a: Api, path: string): Promise<{ status: number, type: string, text: string }> {
  const res = await fetch(`${a.url}${path}`)
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() }
}

interface Sample { name: string, labels: Record<string, string>, value: number }

/** The samples of a Prometheus text exposition (comments skipped). */
function samples (text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!
    out.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return out
}

/** The value of the one sample with this name and (at least) these labels; undefined if none. */
function value (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples(text).filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`)
  return found[0]?.value
}

/** Every value a label takes in a family (histograms: its _bucket/_sum/_count samples too). */
function labelValues (text: string, family: string, label: string): Set<string> {
  return new Set(samples(text).filter(s => s.name === family || s.name.startsWith(`${family}_`)).flatMap(s => s.labels[label] === undefined ? [] : [s.labels[label]]))
}

/** Resolves once `from` knows that `to` subscribes to the capability topic (so gossip reaches it). */
async function subscribed (from: Peer, to: Peer): Promise<void> {
  const pubsub = from.libp2p.services.pubsub
  const known = (): boolean => pubsub.getSubscribers(from.capability.topic).some(p => p.equals(to.libp2p.peerId))
  if (known()) return
  await new Promise<void>(resolve => {
    const check = (): void => { if (known()) { pubsub.removeEventListener('subscription-change', check); resolve() } }
    pubsub.addEventListener('subscription-change', check)
  })
}

/** Resolves after `n` activity events of `type` on `p` from now on. */
async function events (p: Peer, type: string, n: number): Promise<void> {
  await new Promise<void>(resolve => {
    let seen = 0
    const off = p.activity.subscribe(e => { if (e.type === type && ++seen === n) { off(); resolve() } })
  })
}

describe('metrics, health and readiness of real peers', () => {
  it('/health answers, /ready says why not before a connection and 200 after, and a task moves the counters', async () => {
    const [a, b] = [await peer(), await peer()]
    const api_ = await api(a)
    expect(await get(api_, '/health')).toMatchObject({ status: 200, text: JSON.stringify({ ok: true }) })
    const before = await get(api_, '/ready')
    expect(before.status).toBe(503)
    expect((JSON.parse(before.text) as { reasons: string[] }).reasons).toEqual([expect.stringMatching(/^no open connection to another peer/)])

    await connectRing([a, b])
    await untilTables([a, b], () => a.capability.agents().length === 12 && b.capability.agents().length === 12)
    await a.whenIndexed()
    // A new version of one of b's agents, once b knows a listens: it reaches a through gossip.
    await subscribed(b, a)
    const id = `${b.peerId}/arithmetic`
    const version = a.capability.agents().find(v => v.body.agent === id)!.body.version
    b.capability.advertise(toLocalAgent(b.agents.get('arithmetic')!))
    await untilTables([a], () => (a.capability.agents().find(v => v.body.agent === id)?.body.version ?? 0) > version)
    await a.whenIndexed()
    const report = await a.tasks.submit({ subtasks: [{ id: 'x', capability: { skills: ['arithmetic'], text: 'evaluate an arithmetic expression' }, input: { expression: '6 * 7' } }] }).finished
    expect(report.status).toBe('done')

    const ready = await get(api_, '/ready')
    expect(ready).toMatchObject({ status: 200, text: JSON.stringify({ ready: true }) })
    const scraped = await get(api_, '/metrics')
    expect(scraped.status).toBe(200)
    expect(scraped.type).toBe(a.metrics.contentType)
    const text = scraped.text
    expect(value(text, 'agentmesh_tasks_total', { status: 'done', reason: 'none' })).toBe(1)
    expect(value(text, 'agentmesh_routing_decisions_total', { policy: a.router.policy.name, result: 'chosen' })).toBe(1)
    expect(value(text, 'agentmesh_routing_reward_count', { policy: a.router.policy.name, part: 'answer' })).toBe(1)
    expect(value(text, 'agentmesh_connections', { kind: 'tcp' })).toBeGreaterThanOrEqual(1)
    expect(value(text, 'agentmesh_connections', { kind: 'relayed' })).toBe(0)
    // The services' own metrics, registered through the node's metrics component.
    expect(value(text, 'agentmesh_capability_gossip_total', { verdict: 'accept' })).toBeGreaterThanOrEqual(1)
    expect(value(text, 'agentmesh_rpc_beacon_seconds_count', { result: 'ok' })).toBeGreaterThanOrEqual(1)
    expect(value(text, 'agentmesh_table_agents')).toBe(a.capability.agents().length)
    expect(value(text, 'agentmesh_table_hosts')).toBe(2)
    expect(value(text, 'agentmesh_index_agents')).toBe(a.index.size)
    // The routing search (the request has a text: semantic screening), by its plan.
    const plans = a.index.plans()
    expect(Object.values(plans).reduce((sum, n) => sum + n, 0)).toBeGreaterThanOrEqual(1)
    for (const [plan, n] of Object.entries(plans)) expect(value(text, 'agentmesh_index_searches_total', { plan })).toBe(n)
    expect(value(text, 'agentmesh_index_skill_index_members', { chosen: 'misses', state: 'ready' })).toBe(0)
    expect(value(text, 'agentmesh_ready')).toBe(1)
    // The process's metrics, once, after the peer's.
    expect(value(text, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0)
    expect(value(text, 'process_cpu_seconds_total')).toBeGreaterThan(0)
    const families = text.split('\n').filter(l => l.startsWith('# TYPE ')).map(l => l.split(' ')[2])
    expect(families.filter((f, i) => families.indexOf(f) !== i)).toEqual([])

    // Each peer has its own registry, libp2p's and gossipsub's metrics included.
    const other = await b.metrics.text()
    expect(value(other, 'agentmesh_tasks_total', { status: 'done', reason: 'none' })).toBeUndefined()
    for (const t of [text, other]) {
      const open = ['inbound', 'outbound'].map(d => value(t, 'libp2p_connection_manager_connections', { libp2p_connection_manager_connections: d }) ?? 0)
      expect(open[0]! + open[1]!).toBeGreaterThanOrEqual(1)
      expect(value(t, 'gossipsub_topic_subscription_status', { topicStr: a.capability.topic })).toBe(1)
    }
  })

  it('a lone peer is ready with its own agents and no connection; a peer without agents is not', async () => {
    const lone = await peer({ lone: true })
    expect(await get(await api(lone), '/ready')).toMatchObject({ status: 200 })
    const empty = await peer({ lone: true, agents: [] })
    const answer = await get(await api(empty), '/ready')
    expect(answer.status).toBe(503)
    expect(JSON.parse(answer.text)).toEqual({ ready: false, reasons: ['the capability table holds no agent yet'] })
  })

  it('without libp2p\'s metrics (libp2pMetrics: false) the services still register theirs through the metrics component, and libp2p\'s are gone', async () => {
    const [a, b] = [await peer({ libp2pMetrics: false }), await peer()]
    await connectRing([a, b])
    await untilTables([a, b], () => a.capability.agents().length === 12)
    await subscribed(b, a)
    const rejected = events(a, 'gossip-rejected', 1)
    await b.libp2p.services.pubsub.publish(a.capability.topic, encodeCanonical({ t: 'vcv', body: new Uint8Array(1), sig: new Uint8Array(64) }))
    await rejected
    const text = await a.metrics.text()
    expect(value(text, 'agentmesh_capability_gossip_total', { verdict: 'reject' })).toBe(1)
    expect(value(text, 'agentmesh_capability_gossip_refused_total', { reason: 'malformed' })).toBe(1)
    expect(value(text, 'agentmesh_consensus_certificates')).toBe(0)
    expect(value(text, 'agentmesh_table_agents')).toBe(12)
    const families = text.split('\n').filter(l => l.startsWith('# TYPE ')).map(l => l.split(' ')[2]!)
    expect(families.filter(f => f.startsWith('libp2p_') || f.startsWith('gossipsub_') || f === 'nodejs_fs_usage_bytes')).toEqual([])
    // The other peer, with them, has libp2p's.
    expect(await b.metrics.text()).toMatch(/^# TYPE libp2p_/m)
  })

  it('reasons written by a peer or unknown to the classifiers add no label values', async () => {
    const [a, b] = [await peer(), await peer()]
    await connectRing([a, b])
    await untilTables([a, b], () => a.capability.agents().length === 12)
    await subscribed(b, a)
    // Records a's table cannot decode, each naming a field the sender made up: the reason quotes it.
    const rejected = events(a, 'gossip-rejected', 3)
    for (let i = 0; i < 3; i++) await b.libp2p.services.pubsub.publish(a.capability.topic, encodeCanonical({ t: 'vcv', body: new Uint8Array(1), sig: new Uint8Array(64), [`evil-${i}`]: i }))
    await rejected
    // Whatever else reaches the activity stream with free text in it.
    for (let i = 0; i < 50; i++) {
      a.activity.emit({ type: 'task-trace', task: `t${i}`, entry: { at: 0, kind: 'reroute', reason: `hostile reason ${i}` } })
      a.activity.emit({ type: 'task-finished', task: `t${i}`, status: `status-${i}`, reason: `why ${i}`, spent: 0 })
      a.activity.emit({ type: 'consensus-rejected', from: `peer-${i}`, reason: `made up ${i}` })
      a.activity.emit({ type: 'gossip-rejected', from: `peer-${i}`, reason: `made up ${i}` })
      a.activity.emit({ type: 'peer-refused', peer: `peer-${i}`, reason: `it is a peer of network "budget work ${i}"` })
    }
    const text = await a.metrics.text()
    expect(value(text, 'agentmesh_capability_gossip_total', { verdict: 'reject' })).toBe(3)
    expect(value(text, 'agentmesh_capability_gossip_refused_total', { reason: 'malformed' })).toBe(3)
    expect(value(text, 'agentmesh_task_reroutes_total', { reason: 'other' })).toBe(50)
    expect(value(text, 'agentmesh_tasks_total', { status: 'other', reason: 'other' })).toBe(50)
    expect(value(text, 'agentmesh_peers_refused_total', { reason: 'other-network' })).toBe(50)
    expect(value(text, 'agentmesh_records_rejected_total', { source: 'capability', reason: 'malformed' })).toBe(53)
    expect(labelValues(text, 'agentmesh_task_reroutes_total', 'reason')).toEqual(new Set(['other']))
    const within = (family: string, label: string, allowed: readonly string[]): void => {
      for (const v of labelValues(text, family, label)) expect(allowed, `${family}{${label}="${v}"}`).toContain(v)
    }
    within('agentmesh_tasks_total', 'reason', TASK_REASONS)
    within('agentmesh_tasks_total', 'status', ['done', 'escalated', 'cancelled', 'other'])
    within('agentmesh_capability_gossip_refused_total', 'reason', GOSSIP_REASONS)
    within('agentmesh_records_rejected_total', 'reason', [...GOSSIP_REASONS, ...CONSENSUS_REASONS])
    within('agentmesh_peers_refused_total', 'reason', REFUSAL_REASONS)
    within('agentmesh_rpc_execute_seconds', 'result', ['ok', 'input', 'unavailable', 'failed', 'timeout', 'cancelled', 'other'])
    // No label anywhere carries a peer id or the text a peer wrote.
    expect(text).not.toMatch(/12D3KooW|evil-|hostile|made up|status-\d/)
  })
})

describe('reason classes', () => {
  it('name the reasons the task machine, the table and the guard really write', () => {
    expect(taskReason(undefined)).toBe('none')
    expect(taskReason(RESTARTED)).toBe('restarted')
    expect(taskReason('timed out')).toBe('timeout')
    expect(taskReason('subtask "x": task deadline of 500 ms passed')).toBe('timeout')
    expect(taskReason('over budget (costs 3)')).toBe('over-budget')
    expect(taskReason('subtask "a b": no usable agent (failed here: p/calc)')).toBe('no-candidates')
    expect(taskReason('subtask "x": no agent left after 4 routing rounds')).toBe('no-candidates')
    expect(taskReason('unavailable: connection to 12D3KooWx lost')).toBe('unavailable')
    expect(taskReason('failed: timeout in the agent')).toBe('failed')
    expect(taskReason('subtask "x": no majority among 3 results (1/1/1)')).toBe('disagreement')
    expect(taskReason('subtask "x": consensus failed: the committee did not commit within 20000 ms')).toBe('consensus')
    expect(taskReason('subtask "x": input reference: /y/value is missing')).toBe('input')
    expect(gossipReason('ignore', 'stale version')).toBe('stale')
    expect(gossipReason('ignore', 'host over its quota of 32 agents')).toBe('over-quota')
    expect(gossipReason('reject', 'bad signature')).toBe('bad-signature')
    expect(gossipReason('reject', 'record has unknown field "x"')).toBe('malformed')
    expect(gossipReason('accept', 'anything')).toBe('none')
    expect(consensusReason('certificate: 2 signatures do not verify')).toBe('bad-certificate')
    expect(consensusReason('this peer is not a member of that committee')).toBe('not-member')
    expect(refusalReason('gossip score -2400 is below the graylist threshold -2000 (invalid messages or proven equivocation)')).toBe('graylisted')
    expect(refusalReason('more than 10× its budget of 50 beacon requests per second')).toBe('over-budget')
    expect(refusalReason('its peer id has less than the network\'s 8 bits of proof of work')).toBe('id-work')
  })

  it('gossipsub topic labels are one of the network\'s topics or "other"', async () => {
    const registry = new Registry()
    const { register } = gossipsubRegister(registry, { '/net/capability/1': 'capability' })
    const gauge = (register.gauge as unknown as (c: { name: string, help: string, labelNames: string[] }) => { set: (l: Record<string, string>, v: number) => void })({ name: 'g', help: 'g', labelNames: ['topicStr'] })
    gauge.set({ topicStr: '/net/capability/1' }, 1)
    for (let i = 0; i < 20; i++) gauge.set({ topicStr: `/invented/${i}` }, 2)
    expect(labelValues(await registry.metrics(), 'g', 'topicStr')).toEqual(new Set(['/net/capability/1', 'other']))
  })

  it('answer with a member of their set, whatever the text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 400 }), fc.constantFrom('accept', 'ignore', 'reject' as const), (text, verdict) => {
      expect(TASK_REASONS).toContain(taskReason(text))
      expect(GOSSIP_REASONS).toContain(gossipReason(verdict, text))
      expect(CONSENSUS_REASONS).toContain(consensusReason(text))
      expect(REFUSAL_REASONS).toContain(refusalReason(text))
    }))
  })
})
