/**
 * A peer's Prometheus metrics: its own registry (several peers may share a process, so never
 * prom-client's global one), filled mostly from the peer's activity stream, and read by
 * GET /metrics and GET /ready. Every count is kept as things happen: a scrape reads numbers, it
 * never walks the table, the index or the task list. Every label value comes from a fixed list
 * (see metric-labels.ts): peers write the reasons, and must not be able to add time series.
 *
 * @example
 * ```ts
 * const metrics = new PeerMetrics({ index, policy, topics: { [capabilityTopic]: 'capability' } })
 * createLibp2p({ metrics: metrics.component(), services: { pubsub: gossip({ metrics: metrics.gossipsubMetrics() }) } })
 * metrics.watchHost(libp2p); metrics.follow(activity)
 * await metrics.text()   // the exposition, this peer's metrics then the process's
 * ```
 */
import type { Libp2p, Metrics } from '@libp2p/interface'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { CapabilityIndex } from '../../capability-index/index.ts'
import { POLICY_NAMES, type SelectionPolicy } from '../../protocols/routing/index.ts'
import type { GossipMetrics } from '../network/gossip.ts'
import { connectionKind, type ConnectionKind } from '../network/status.ts'
import type { Activity, ActivityEvent } from './activity.ts'
import { gossipsubRegister } from './gossipsub-register.ts'
import { consensusReason, gossipReason, oneOf, refusalReason, taskReason } from './metric-labels.ts'

export interface PeerMetricsInit {
  /** The capability index (its size, searches by plan and sub-indexes are read at scrape time). */
  index: Pick<CapabilityIndex, 'size' | 'plans' | 'stats'>
  /** The routing policy: decisions and rewards are labelled with its name. */
  policy: SelectionPolicy
  /** Gossip topic → label for gossipsub's own metrics (any other topic is labelled "other"). */
  topics: Record<string, string>
  /** Ready without any connection: a peer meant to run alone, or a network's first public node. */
  lone?: boolean
  /** libp2p's and gossipsub's own metrics (default true); see README for their cost. */
  libp2p?: boolean
}

export interface Readiness { ready: boolean, reasons: string[] }

const KINDS: ConnectionKind[] = ['tcp', 'websocket', 'webrtc', 'relayed', 'other']
const TASK_STATUSES = ['done', 'escalated', 'cancelled', 'other'] as const
/** The default reward weights give answers in about -0.5..1.5, agreement terms 0..0.5. */
const REWARD_BUCKETS = [-0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5]

export class PeerMetrics {
  readonly registry = new Registry()
  readonly #init: PeerMetricsInit
  readonly #policy: string
  #libp2p: Libp2p | undefined
  /** Open connections: their kind by connection id, and the total. */
  readonly #open = new Map<string, ConnectionKind>()
  #agents = 0
  /** Live agents per host, for the host count. */
  readonly #hosts = new Map<string, number>()

  readonly #connections: Gauge<'kind'>
  readonly #rejected: Counter<'source' | 'reason'>
  readonly #tableAgents: Gauge
  readonly #tableHosts: Gauge
  readonly #decisions: Counter<'policy' | 'result'>
  readonly #rewards: Histogram<'policy' | 'part'>
  readonly #tasks: Counter<'status' | 'reason'>
  readonly #reroutes: Counter<'reason'>
  readonly #instances: Counter<'role' | 'result'>
  readonly #certificates: Counter
  readonly #refused: Counter<'reason'>
  readonly #equivocations: Counter<'source'>
  readonly #damaged: Counter

  constructor (init: PeerMetricsInit) {
    this.#init = init
    this.#policy = oneOf(init.policy.name, POLICY_NAMES, 'linucb')
    const registers = [this.registry]
    const self = this
    this.#connections = new Gauge({ name: 'agentmesh_connections', help: 'Open connections by transport kind', labelNames: ['kind'], registers })
    for (const kind of KINDS) this.#connections.set({ kind }, 0)
    this.#rejected = new Counter({ name: 'agentmesh_records_rejected_total', help: 'Records and messages refused as invalid (gossip or direct), by reason class', labelNames: ['source', 'reason'], registers })
    this.#tableAgents = new Gauge({ name: 'agentmesh_table_agents', help: 'Verified live VCVs in the capability table', registers })
    this.#tableHosts = new Gauge({ name: 'agentmesh_table_hosts', help: 'Hosts with at least one live VCV in the table', registers })
    new Gauge({ name: 'agentmesh_index_agents', help: 'Agents in the capability index', registers, collect () { this.set(init.index.size) } })
    new Counter({
      name: 'agentmesh_index_searches_total',
      help: 'Capability index searches by the way they went (post-filter-missed: a post-filter fell back to a filtered search, the slow tail)',
      labelNames: ['plan'],
      registers,
      collect () {
        this.reset()
        for (const [plan, n] of Object.entries(init.index.plans())) this.inc({ plan }, n)
      }
    })
    new Gauge({
      name: 'agentmesh_index_skill_index_members',
      help: 'Members of skill sub-indexes, by why they were chosen (size, misses) and state (ready, building)',
      labelNames: ['chosen', 'state'],
      registers,
      collect () {
        const members = { size: { ready: 0, building: 0 }, misses: { ready: 0, building: 0 } }
        for (const g of init.index.stats().groups) {
          for (const x of g.skillIndexes) members[x.byMisses ? 'misses' : 'size'].ready += x.live
          for (const b of g.skillIndexBuilds) members[b.byMisses ? 'misses' : 'size'].building += b.added
        }
        for (const chosen of ['size', 'misses'] as const) for (const state of ['ready', 'building'] as const) this.set({ chosen, state }, members[chosen][state])
      }
    })
    new Gauge({ name: 'agentmesh_ready', help: '1 when GET /ready answers 200', registers, collect () { this.set(self.readiness().ready ? 1 : 0) } })
    this.#decisions = new Counter({ name: 'agentmesh_routing_decisions_total', help: 'Routing decisions by policy: an agent chosen, none found, or the router failed', labelNames: ['policy', 'result'], registers })
    this.#rewards = new Histogram({ name: 'agentmesh_routing_reward', help: 'Rewards the policy learned: at the answer, and the later agreement term', labelNames: ['policy', 'part'], buckets: REWARD_BUCKETS, registers })
    this.#tasks = new Counter({ name: 'agentmesh_tasks_total', help: 'Tasks ended, by status and reason class', labelNames: ['status', 'reason'], registers })
    this.#reroutes = new Counter({ name: 'agentmesh_task_reroutes_total', help: 'Attempts rerouted to another agent, by reason class', labelNames: ['reason'], registers })
    this.#instances = new Counter({ name: 'agentmesh_consensus_instances_total', help: 'Consensus instances ended here, by role and result (answer, escalate, timeout, abandoned)', labelNames: ['role', 'result'], registers })
    this.#certificates = new Counter({ name: 'agentmesh_consensus_certificates_accepted_total', help: "Other committees' certificates verified and kept", registers })
    this.#refused = new Counter({ name: 'agentmesh_peers_refused_total', help: 'Peers hung up on and refused, by reason class', labelNames: ['reason'], registers })
    this.#equivocations = new Counter({ name: 'agentmesh_equivocations_total', help: 'Hosts proven to have signed two different things as one', labelNames: ['source'], registers })
    this.#damaged = new Counter({ name: 'agentmesh_stores_damaged_total', help: 'Stored files found damaged at start and set aside', registers })
    this.#watchPolicy(init.policy)
    processRegistry() // the event-loop monitor starts now, not at the first scrape
  }

  get contentType (): string { return this.registry.contentType }

  /** The exposition: this peer's metrics, then the process's (CPU, memory, event-loop lag, GC). */
  async text (): Promise<string> {
    const [own, shared] = await Promise.all([this.registry.metrics(), processRegistry().metrics()])
    return own.endsWith('\n') || own === '' ? own + shared : `${own}\n${shared}`
  }

  /**
   * The node's metrics component, over this registry: what the services register through it
   * (components.metrics: the capability, RPC and consensus services' own metrics), and libp2p's own
   * metrics (connections, dials, streams, bytes per protocol) unless `libp2p` is false, when only
   * ours are kept and libp2p's cost nothing (no stream is tracked). Process metrics are left to
   * the shared process registry (one event-loop monitor per process).
   */
  component (): (components: Parameters<ReturnType<typeof prometheusMetrics>>[0]) => Metrics {
    // The package keeps one name → metric map per process; without clearing it, a second peer in
    // the process would get the first peer's metric objects (registered in the first registry).
    // Clearing it also clears prom-client's global registry, which agentmesh never uses.
    const all = prometheusMetrics({ registry: this.registry, collectDefaultMetrics: false, preserveExistingMetrics: false })
    if (this.#init.libp2p !== false) return all
    return components => {
      const before = new Set(this.registry.getMetricsAsArray().map(m => m.name))
      const metrics = all(components)
      // What the package registers on its own (transfer bytes, memory, disk) goes too.
      for (const m of this.registry.getMetricsAsArray()) if (!before.has(m.name)) this.registry.removeSingleMetric(m.name)
      return ownOnly(metrics)
    }
  }

  /** Options for gossip(): gossipsub's own metrics, with topic labels bounded to ours. */
  gossipsubMetrics (): GossipMetrics | undefined {
    if (this.#init.libp2p === false) return undefined
    return gossipsubRegister(this.registry, this.#init.topics)
  }

  /** Counts open connections by kind as they open and close (never by listing them at scrape). */
  watchHost (libp2p: Libp2p): void {
    this.#libp2p = libp2p
    libp2p.addEventListener('connection:open', e => {
      const kind = connectionKind(e.detail)
      if (this.#open.has(e.detail.id)) return
      this.#open.set(e.detail.id, kind)
      this.#connections.inc({ kind })
    })
    libp2p.addEventListener('connection:close', e => {
      const kind = this.#open.get(e.detail.id)
      if (kind === undefined) return
      this.#open.delete(e.detail.id)
      this.#connections.dec({ kind })
    })
  }

  /** Subscribes to the peer's activity; returns the unsubscribe. */
  follow (activity: Activity): () => void {
    return activity.subscribe(e => { this.#onActivity(e) })
  }

  /** Converged enough to route: what is missing, or nothing. O(1). */
  readiness (): Readiness {
    const reasons: string[] = []
    if (this.#libp2p?.status !== 'started') reasons.push(`the peer is not running (libp2p ${this.#libp2p?.status ?? 'not created'})`)
    if (this.#open.size === 0 && this.#init.lone !== true) reasons.push('no open connection to another peer: dial one (--bootstrap ADDR, or agentmesh join) or give the network a bootstrap list')
    if (this.#agents === 0) reasons.push('the capability table holds no agent yet')
    const indexed = this.#init.index.size
    if (indexed !== this.#agents) reasons.push(`the index has not caught up with the table: ${indexed} of ${this.#agents} agents indexed`)
    return { ready: reasons.length === 0, reasons }
  }

  /** Live agents and hosts, as counted from the table's events. */
  get table (): { agents: number, hosts: number } { return { agents: this.#agents, hosts: this.#hosts.size } }

  /**
   * The reward the policy learned from each dispatch it chose: its own `feedback` answers with
   * it, so the histogram shows exactly what the bandit learned (cost, latency, later agreement).
   */
  #watchPolicy (policy: SelectionPolicy): void {
    const feedback = policy.feedback.bind(policy)
    policy.feedback = (id, outcome, now) => {
      const result = feedback(id, outcome, now)
      if (result.status === 'learned' && Number.isFinite(result.reward)) this.#rewards.observe({ policy: this.#policy, part: 'success' in outcome ? 'answer' : 'agreement' }, result.reward)
      return result
    }
  }

  #onActivity (e: ActivityEvent): void {
    switch (e.type) {
      case 'task-trace':
        if (e.entry.kind === 'route') this.#decisions.inc({ policy: this.#policy, result: decisionResult(e.entry.detail) })
        else if (e.entry.kind === 'reroute') this.#reroutes.inc({ reason: taskReason(e.entry.reason) })
        break
      case 'task-finished': {
        const status = oneOf(e.status, TASK_STATUSES, 'other')
        // A cancellation's reason is whatever the canceller wrote.
        this.#tasks.inc({ status, reason: status === 'cancelled' ? 'cancelled' : taskReason(e.reason) })
        break
      }
      case 'task-ended-by-restart': this.#tasks.inc({ status: 'escalated', reason: 'restarted' }); break
      case 'consensus-committed': this.#instances.inc({ role: e.requester ? 'requester' : 'member', result: e.outcome === 'escalate' ? 'escalate' : 'answer' }); break
      case 'consensus-timeout': this.#instances.inc({ role: 'requester', result: 'timeout' }); break
      case 'consensus-abandoned': this.#instances.inc({ role: 'member', result: 'abandoned' }); break
      case 'consensus-accepted': this.#certificates.inc(); break
      case 'consensus-rejected': this.#rejected.inc({ source: 'consensus', reason: consensusReason(e.reason) }); break
      case 'gossip-rejected': this.#rejected.inc({ source: 'capability', reason: gossipReason('reject', e.reason) }); break
      case 'agent-added': this.#agentCount(e.agent, 1); break
      case 'agent-removed': this.#agentCount(e.agent, -1); break
      case 'peer-refused': this.#refused.inc({ reason: refusalReason(e.reason) }); break
      case 'equivocation': this.#equivocations.inc({ source: e.source === 'consensus' ? 'consensus' : 'capability' }); break
      case 'store-damaged': this.#damaged.inc(); break
    }
  }

  #agentCount (agent: string, delta: 1 | -1): void {
    const host = agent.slice(0, Math.max(0, agent.indexOf('/')))
    const n = (this.#hosts.get(host) ?? 0) + delta
    if (n < 0) return // a removal of an agent never counted: nothing to undo
    if (n === 0) this.#hosts.delete(host)
    else this.#hosts.set(host, n)
    this.#agents += delta
    this.#tableAgents.set(this.#agents)
    this.#tableHosts.set(this.#hosts.size)
  }
}

/** What a route trace entry says the router did: picked an agent, found none, or failed. */
function decisionResult (detail: unknown): 'chosen' | 'none' | 'error' {
  if (typeof detail !== 'object' || detail === null) return 'none'
  if (typeof (detail as { chosen?: unknown }).chosen === 'string') return 'chosen'
  return 'error' in detail ? 'error' : 'none'
}

let shared: Registry | undefined

/**
 * Process metrics, once per process: prom-client starts an event-loop delay monitor and a GC
 * observer per registry it collects into, and never stops them; per peer, a process that starts
 * many peers (the tests do) would keep one of each per peer ever started, all reporting the same.
 */
function processRegistry (): Registry {
  if (shared !== undefined) return shared
  shared = new Registry()
  collectDefaultMetrics({ register: shared, eventLoopMonitoringPrecision: 10 })
  return shared
}

/** A metrics component that keeps only agentmesh's own metrics: libp2p's registrations and stream tracking become no-ops. */
function ownOnly (metrics: Metrics): Metrics {
  const own = (name: string): boolean => name.startsWith('agentmesh_')
  const noop = { update () {}, increment () {}, decrement () {}, reset () {}, observe () {}, timer: () => () => {} }
  return Object.assign(Object.create(metrics) as Metrics, {
    trackMultiaddrConnection () {},
    trackProtocolStream () {},
    registerMetric: (name: string, o?: never) => own(name) ? metrics.registerMetric(name, o) : noop,
    registerMetricGroup: (name: string, o?: never) => own(name) ? metrics.registerMetricGroup(name, o) : noop,
    registerCounter: (name: string, o?: never) => own(name) ? metrics.registerCounter(name, o) : noop,
    registerCounterGroup: (name: string, o?: never) => own(name) ? metrics.registerCounterGroup(name, o) : noop,
    registerHistogram: (name: string, o?: never) => own(name) ? metrics.registerHistogram(name, o) : noop,
    registerHistogramGroup: (name: string, o?: never) => own(name) ? metrics.registerHistogramGroup(name, o) : noop,
    registerSummary: (name: string, o?: never) => own(name) ? metrics.registerSummary(name, o) : noop,
    registerSummaryGroup: (name: string, o?: never) => own(name) ? metrics.registerSummaryGroup(name, o) : noop
  })
}
