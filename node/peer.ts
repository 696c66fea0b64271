/**
 * One agentmesh peer: a libp2p host (TCP, noise, yamux, identify, ping, gossipsub) that hosts
 * agents, advertises them as signed VCVs and keeps the table of every VCV it has verified.
 *
 * @example
 * ```ts
 * const peer = await startPeer({ dataDir: '.agentmesh/a', listen: ['/ip4/127.0.0.1/tcp/7100'], agents: defaultAgentSpecs() })
 * await peer.dial(['/ip4/127.0.0.1/tcp/7101/p2p/12D3KooW...'])
 * peer.capability.agents()   // every verified VCV in the mesh
 * await peer.stop()
 * ```
 */
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Logger } from '@libp2p/interface'
import { join } from 'node:path'
import { DEFAULT_MAX_AGENTS_PER_HOST, splitAgentId, ValidationError, type LocalAgent, type SignedVcv } from '../protocols/capability/index.ts'
import type { Agent, AgentSpec } from './agents/agent.ts'
import { createAgent } from './agents/registry.ts'
import { capabilityService, type CapabilityService } from './services/capability-service.ts'
import { EQUIVOCATOR_SCORE, gossip, type GossipProfile, type GossipSub } from './network/gossip.ts'
import { banLowScorers } from './network/score-guard.ts'
import { PeerLimits } from './network/peer-limits.ts'
import { AgentHost } from './services/agent-host.ts'
import type { LiveState } from '../protocols/rpc/index.ts'
import { CapabilityIndex, HashEmbedder, IndexSync, OpenAiEmbedder, type Embedder } from '../capability-index/index.ts'
import { createPolicy, isPolicyName, POLICY_NAMES, restorePolicy, type SelectionPolicy } from '../protocols/routing/index.ts'
import { MeshRouter } from './services/router.ts'
import { TaskBoard } from './services/tasks.ts'
import { Activity } from './services/activity.ts'
import { TaskJournal } from './storage/task-journal.ts'
import { removeStaleTemps } from './storage/temp-files.ts'
import { rpcService, type RpcService } from './services/rpc-service.ts'
import { consensusService, type ConsensusService } from './services/consensus-service.ts'
import { peerLogger, type Warn } from './services/logger.ts'
import { consensusAgreement } from './services/agreement.ts'
import { Suspects } from '../protocols/consensus/index.ts'
import { peerCanaries, resolveCanaries, type CanaryConfig } from './services/canaries.ts'
import type { DispatchOutcome } from './services/task-runner.ts'
import { prepareFromSchema, type CapabilityRequest } from '../protocols/task/index.ts'
import { ed25519Signer, ed25519Verifier } from './network/crypto.ts'
import type { Verifier } from '../protocols/identity.ts'
import { coalescedWriter, loadOrCreateIdentity, writeAtomic, writeAtomicSync } from './storage/identity.ts'
import { decodeCanonical, encodeCanonical } from '../protocols/cbor.ts'
import { networkIds } from '../protocols/network/index.ts'
import { hostOptions } from './network/host.ts'
import { NetworkGuard } from './network/guard.ts'
import { isLocal, localSettings, type NetworkSettings } from './network/settings.ts'
import { upgradeRelayed, type DirectUpgrader } from './network/upgrade.ts'
import { DataDirInUseError, lockDataDir } from './storage/lock.ts'
import { readOrSetAside, setAside, type Damage } from './storage/damaged.ts'
import { explainDialError } from './network/dial-errors.ts'
import { PeerMetrics } from './services/metrics.ts'

export interface PeerConfig {
  /** Holds identity.key and state.json. */
  dataDir: string
  /** Multiaddrs to listen on, e.g. `/ip4/127.0.0.1/tcp/7100`. */
  listen: string[]
  agents: AgentSpec[]
  /** Agents built by the embedding program (any implementation of the Agent interface). */
  customAgents?: Agent[]
  /**
   * What this host's beacon replies say about an agent, given what it measured (default: the
   * measurement). Only for modelling a lying host, as the simulator's cross-check does: a sybil
   * host that claims its agents are idle whatever they do.
   */
  beaconState?: (state: LiveState) => LiveState
  /** Lifetime of this host's VCVs (default 60 s). */
  ttlMs?: number
  antiEntropyIntervalMs?: number
  gossipProfile?: GossipProfile
  /** Selection policy by name (default `linucb`); its state persists in the data directory. */
  routingPolicy?: string
  /** Spot-checks: on by default (`resolveCanaries`); settings over the defaults, or false to turn them off. */
  canaries?: Partial<CanaryConfig> | false
  /** Text embedder for the capability index (default: the offline hash embedder, or the
   * OpenAI-compatible one when AGENTMESH_EMBEDDINGS_URL is set). */
  embedder?: Embedder
  /**
   * Signature checks for records, votes and certificates (default: Ed25519 on node:crypto, per
   * peer). Peers sharing a process may share a rememberingVerifier: each signature checked once.
   */
  verifier?: Verifier
  /** The network to join and this peer's role in it (default: the local network). */
  network?: NetworkSettings
  /** Runs alone on purpose: GET /ready needs no connection (a public node with no bootstrap list is always so). */
  lone?: boolean
  /** libp2p's and gossipsub's own metrics in GET /metrics (default true; the consensus service registers its own through them). */
  libp2pMetrics?: boolean
  /** Where the services' errors are said (default: a process warning; see services/logger.ts). */
  warn?: Warn
}

export type PeerServices = { pubsub: GossipSub, capability: CapabilityService, rpc: RpcService, consensus: ConsensusService, identify: unknown, ping: unknown, dht: unknown }

export interface Peer {
  readonly peerId: string
  readonly dataDir: string
  readonly libp2p: Libp2p<PeerServices>
  readonly capability: CapabilityService
  /** Beacons and remote execution of any agent in the mesh. */
  readonly rpc: RpcService
  /** Committees, certificates and the reputation book. */
  readonly consensus: ConsensusService
  /** Agents whose latest canary failed here: no weight in tallies, routed last, retested (protocols/consensus/canary.ts `Suspects`). */
  readonly suspects: Pick<Suspects, 'has' | 'list'>
  /** Semantic screening, beacon and bandit selection. */
  readonly router: MeshRouter
  /** The HNSW index over the verified VCVs; embedding is asynchronous, see `whenIndexed`. */
  readonly index: CapabilityIndex
  /** Resolves once every table change so far is reflected in the index. */
  whenIndexed (): Promise<void>
  /** Everything that happens here, as one stream of events (logs, metrics and the dashboard read it). */
  readonly activity: Activity
  /** Prometheus metrics (`text()`) and readiness, counted as things happen. */
  readonly metrics: PeerMetrics
  /** Tasks this peer runs for its user (journaled in tasks.sqlite). */
  readonly tasks: TaskBoard
  /** What start found of an earlier run's unfinished business: tasks it ended, files it set aside. */
  readonly recovered: Recovered
  /** This host's agents by local name. */
  readonly agents: ReadonlyMap<string, Agent>
  /**
   * Hosts these agents instead of the ones from the agents file (agents given in code stay):
   * new ones are advertised, changed ones advertised again (a new version), missing ones withdrawn.
   */
  reloadAgents (specs: AgentSpec[]): AgentsReloaded
  /**
   * Hosts an agent made while the peer runs (the MQTT bridge's), or replaces one made that way:
   * advertised at once (a new version when replaced). Throws PeerStartError on a name another agent
   * has, a full quota, or a description a VCV cannot carry.
   */
  hostAgent (agent: Agent): void
  /** Stops hosting an agent given to `hostAgent`: its tombstone goes out; calls running finish. */
  unhostAgent (name: string): boolean
  /** Agents this host may still add before the network's per-host quota. */
  agentRoom (): number
  /** The network this peer joined and its role there. */
  readonly network: NetworkSettings
  /** Peers refused for belonging to another network. */
  readonly guard: NetworkGuard
  /** Relayed pairs upgraded to direct WebRTC connections (none on the local network). */
  readonly upgrades: DirectUpgrader | undefined
  multiaddrs (): string[]
  /**
   * Dials each address; resolves with the ones that failed and why. With keepAlive the peers are
   * tagged so libp2p re-dials them whenever the link drops (a local mesh's ring).
   */
  dial (addrs: string[], timeoutMs?: number, options?: { keepAlive?: boolean }): Promise<Array<{ addr: string, error: string }>>
  stop (): Promise<void>
}

export interface AgentsReloaded { added: string[], changed: string[], removed: string[] }

export interface Recovered {
  /** Tasks that were running when the peer stopped or crashed, now escalated with the reason. */
  tasksEnded: string[]
  /** Damaged files moved aside (never overwritten), and what that lost. */
  damaged: Damage[]
  /** Temporary files a crash left half-written, deleted at start. */
  staleTemps: string[]
}

/** A mistake the user can fix, with what to do about it. */
export class PeerStartError extends Error {
  override name = 'PeerStartError'
}

/** The peer-store tag (a `keep-alive` prefix) of peers dialled with keepAlive. */
const KEEP_ALIVE_MESH = 'keep-alive-mesh'
const STATE_FILE = 'state.json'
const POLICY_FILE = 'bandit.json'
/** The verified table (signed records, verified again on load), the index and the texts it embedded. */
const TABLE_FILE = 'table.cbor'
const INDEX_DIR = 'index'
const TEXTS_FILE = 'index-texts.json'
const CONSENSUS_DIR = 'consensus'
const TASKS_FILE = 'tasks.sqlite'
/** How long a beacon waits for connections to hosts it is not yet connected to. */
const CONNECT_TIMEOUT_MS = 5000
/** Most of one core that indexing newly learned agents may use (IndexSync cpuShare). */
const INDEX_CPU_SHARE = 0.2
/** How often the index's background work (sub-index builds) gets a slice of that share. */
const INDEX_MAINTAIN_MS = 100

export async function startPeer (config: PeerConfig): Promise<Peer> {
  const agents = new Map<string, Agent>()
  for (const agent of [...config.agents.map(spec => createAgent(spec)), ...config.customAgents ?? []]) {
    const name = agent.describe().name
    if (agents.has(name)) throw new PeerStartError(`two agents are named "${name}" — give each a unique name`)
    agents.set(name, agent)
  }
  for (const addr of config.listen) parseAddr(addr, 'listen address')
  const settings = config.network ?? localSettings()
  const quota = quotaOf(settings)
  if (agents.size > quota) throw new PeerStartError(`${agents.size} agents, but network "${settings.network.name}" lets a host advertise ${quota} (its peers would ignore the rest) — host fewer, or raise maxAgentsPerHost in the network file`)
  for (const addr of settings.announce) parseAddr(addr, 'announce address')
  let lock
  try {
    lock = lockDataDir(config.dataDir)
  } catch (err) {
    throw err instanceof DataDirInUseError ? new PeerStartError(err.message) : err
  }
  try {
    return await startLocked(config, settings, lock, agents)
  } catch (err) {
    lock.release()
    throw err
  }
}

async function startLocked (config: PeerConfig, settings: NetworkSettings, lock: { release: () => void }, agents: Map<string, Agent>): Promise<Peer> {
  // Under the lock nobody else writes here: any temporary file is a crash's leftover.
  const staleTemps = removeStaleTemps(config.dataDir)
  const ids = networkIds(settings.network.name)
  const workBits = settings.network.idWorkBits ?? 0
  let key
  try {
    ({ key } = await loadOrCreateIdentity(config.dataDir, { workBits }))
  } catch (err) {
    // Not readable, not a key, or too little work: each message says what to do. A damaged key is
    // never replaced silently: the peer id is who this peer is to the mesh.
    throw new PeerStartError((err as Error).message)
  }
  const signer = ed25519Signer(key)
  const statePath = join(config.dataDir, STATE_FILE)
  /** Files of an earlier run that did not read back: set aside (never overwritten) and said at start. */
  const damaged: Damage[] = []
  const state = await readState(statePath, damaged)
  const agentHost = new AgentHost(agents, config.beaconState)
  /** The agents that came from specs (the agents file), by name, with the spec they were made from. */
  const fromSpecs = new Map(config.agents.map(spec => [spec.name ?? spec.kind, JSON.stringify(spec)]))
  /** The agents given to hostAgent while running. */
  const hosted = new Set<string>()
  /** The table's rules for a record, as a mistake the user can fix. */
  const checkAdvertisable = (agent: LocalAgent): void => {
    try {
      capability.check(agent)
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err
      throw new PeerStartError(`agent "${agent.name}" cannot be advertised: ${err.message}`)
    }
  }
  const loopback = config.listen.every(a => a.startsWith('/ip4/127.') || a.startsWith('/ip6/::1/'))
  // Everything that can fail on configuration happens before the host starts: nothing half-starts.
  const embedder = config.embedder ?? (process.env.AGENTMESH_EMBEDDINGS_URL !== undefined ? new OpenAiEmbedder() : new HashEmbedder())
  const index = await loadIndex(join(config.dataDir, INDEX_DIR), embedder, damaged)
  // Indexing may take a fifth of a core: a flood of agents waits, routing and the API do not.
  const sync = new IndexSync(index, embedder, { cpuShare: INDEX_CPU_SHARE })
  sync.restoreTexts(await readOrSetAside(join(config.dataDir, TEXTS_FILE), textsOf, 'nothing: agents are embedded again', damaged) ?? {})
  const policyPath = join(config.dataDir, POLICY_FILE)
  const policy = await loadPolicy(policyPath, config.routingPolicy ?? 'linucb', damaged)

  const guard = new NetworkGuard(ids.name, { minIdWorkBits: workBits })
  const host = hostOptions(settings, config.listen, guard)
  const verifier = config.verifier ?? ed25519Verifier()
  // Hosts proven to have signed two different things as one: graylisted by gossip score. Set once
  // the services exist (the score function is read at each heartbeat, not at construction).
  let equivocator: (peer: string) => boolean = () => false
  // A peer far over its request budgets is hung up on and refused, like one graylisted by gossip.
  const limits = new PeerLimits()
  const scored = config.gossipProfile !== 'default'
    ? { topics: [ids.capabilityTopic, ids.certificateTopic], appScore: (peer: string) => equivocator(peer) ? EQUIVOCATOR_SCORE : 0 }
    : {}
  const metrics = new PeerMetrics({ index, policy, topics: { [ids.capabilityTopic]: 'capability', [ids.certificateTopic]: 'certificate' }, lone: config.lone === true || (settings.public && settings.network.bootstrap.length === 0), libp2p: config.libp2pMetrics })
  // One logger for the services and the peer's own parts: errors reach `warn` (services/logger.ts).
  const logger = peerLogger(config.warn)
  const log = logger.forComponent('agentmesh:peer')
  const activity = new Activity(Date.now, logger.forComponent('agentmesh:activity'))
  metrics.follow(activity)
  const libp2p = await createLibp2p({
    start: false,
    logger,
    privateKey: key,
    ...host,
    metrics: metrics.component(),
    services: {
      ...host.services,
      pubsub: gossip({ profile: config.gossipProfile, loopback, overRelays: !isLocal(settings), ...scored, metrics: metrics.gossipsubMetrics() }),
      capability: capabilityService({ verifier, bundle: config.gossipProfile !== 'default', ttlMs: config.ttlMs, antiEntropyIntervalMs: config.antiEntropyIntervalMs, versions: state.versions, topic: ids.capabilityTopic, protocol: ids.capabilityProtocol, maxAgentsPerHost: settings.network.maxAgentsPerHost, minIdWorkBits: workBits, limits }),
      rpc: rpcService({ host: agentHost, signer, protocol: ids.rpcProtocol, limits }),
      // After pubsub and rpc, which it depends on (it loads its data directory in start()).
      consensus: consensusService({
        signer,
        verifier,
        dir: join(config.dataDir, CONSENSUS_DIR),
        topic: ids.certificateTopic,
        onEvent: e => {
          if (e.type === 'committed') activity.emit({ type: 'consensus-committed', instance: e.instance, outcome: e.summary.outcome.kind === 'escalate' ? 'escalate' : 'answer', requester: e.summary.requester === signer.peerId })
          else if (e.type === 'accepted') activity.emit({ type: 'consensus-accepted', instance: e.id })
          else if (e.type === 'timeout') activity.emit({ type: 'consensus-timeout', instance: e.instance, reason: `the committee did not commit within ${e.timeoutMs} ms` })
          else if (e.type === 'abandoned') activity.emit({ type: 'consensus-abandoned', instance: e.instance, reason: e.reason })
          else if (e.type === 'rejected') activity.emit({ type: 'consensus-rejected', from: e.from, reason: e.reason })
          else if (e.type === 'equivocator') activity.emit({ type: 'equivocation', host: e.host, source: 'consensus' })
        }
      })
    }
  }) as unknown as Libp2p<PeerServices>
  metrics.watchHost(libp2p)
  guard.watch(libp2p)
  limits.onAbuse = (peer, reason) => {
    guard.refuse(peer, reason)
    void libp2p.hangUp(peerIdFromString(peer)).catch(() => {})
  }

  try {
    await libp2p.start()
  } catch (err) {
    await Promise.resolve(libp2p.stop()).catch(() => {})
    throw explainStartError(err as NodeJS.ErrnoException, config.listen)
  }

  const capability = libp2p.services.capability
  const rpc = libp2p.services.rpc
  const consensus = libp2p.services.consensus
  const flagged = new Set(capability.flaggedHosts())
  capability.addEventListener('equivocation', e => { flagged.add(e.detail.host); activity.emit({ type: 'equivocation', host: e.detail.host, source: 'capability' }) })
  capability.addEventListener('rejected', e => { activity.emit({ type: 'gossip-rejected', from: e.detail.from, reason: e.detail.reason }) })
  capability.addEventListener('agent:added', e => { activity.emit({ type: 'agent-added', agent: e.detail.body.agent, version: e.detail.body.version }) })
  capability.addEventListener('agent:removed', e => { activity.emit({ type: 'agent-removed', agent: e.detail.agent, reason: e.detail.reason }) })
  guard.onRefused = r => { activity.emit({ type: 'peer-refused', peer: r.peer, reason: r.reason }) }
  equivocator = peer => flagged.has(peer) || consensus.book.isEquivocator(peer)
  const stopBans = banLowScorers(libp2p, guard)
  // Written before the advertisement leaves: a crash can never make this host sign a second record
  // with a version it already used, which peers would take as equivocation. The service publishes
  // at the end of the event loop's turn (setImmediate, to bundle records) and this write runs in a
  // microtask, which comes first; agents advertised together cost one write, not one each.
  const saveState = (): void => { writeAtomicSync(statePath, JSON.stringify({ versions: capability.versions() })) }
  let savePending = false
  const saveStateSoon = (): void => {
    if (savePending) return
    savePending = true
    queueMicrotask(() => { savePending = false; saveState() })
  }
  capability.addEventListener('agent:advertised', saveStateSoon)

  // Sub-index builds (chosen after changes or missed searches) run in slices from indexing's CPU share.
  const maintenance = setInterval(() => { sync.maintain() }, INDEX_MAINTAIN_MS)
  maintenance.unref()
  const follow = (e: CustomEvent<SignedVcv>): void => { void sync.onAdded(e.detail) }
  capability.addEventListener('agent:added', follow)
  capability.addEventListener('agent:updated', follow)
  capability.addEventListener('agent:removed', e => { sync.onRemoved(e.detail.agent) })
  try {
    for (const agent of agents.values()) capability.advertise(toLocalAgent(agent))
    // What this peer knew before it stopped, verified again; then the index keeps only what the table has.
    capability.restore(await readRecords(join(config.dataDir, TABLE_FILE), damaged))
    await sync.idle()
    const live = new Set(capability.agents().map(v => v.body.agent))
    for (const agent of index.agents()) if (!live.has(agent)) index.remove(agent)
  } catch (err) {
    clearInterval(maintenance)
    await libp2p.stop() // its services too, consensus among them
    throw err
  }

  const policyFile = coalescedWriter(policyPath, () => JSON.stringify(policy.toJSON()), log)
  // Suspension is the canaries' judgement (declared below; read only once the peer runs): routing and tallies share it.
  const suspended = (agent: string): boolean => canaries?.desk.suspects.has(agent) === true
  const router = new MeshRouter({
    index,
    embedder,
    policy,
    table: capability,
    beacon: async (agentIds, ms, onLate) => {
      // Dial on demand first: a host this peer is not connected to is found through the DHT, and
      // connection set-up must not count against the beacon deadline (it measures live state).
      await connectHosts(libp2p, agentIds, CONNECT_TIMEOUT_MS)
      return await libp2p.services.rpc.beacon(agentIds, ms, onLate)
    },
    reputation: agent => consensus.book.reputation(agent),
    suspended,
    newcomer: agent => !consensus.book.vetted(agent),
    // Hosts without the network's work never reach the table, so only bans need checking here.
    refused: host => guard.banned(host),
    onLearned: () => { policyFile.save() }
  })
  const canaries = config.canaries === false
    ? undefined
    : peerCanaries({
      config: resolveCanaries(config.canaries),
      book: consensus.book,
      skillsOf: agent => capability.agents().find(v => v.body.agent === agent)?.body.skills,
      execute: async (agent, input, ms, signal) => await rpc.execute(agent, input, ms, signal),
      onResult: () => { consensus.bookChanged() },
      log: logger.forComponent('agentmesh:canaries')
    })
  const agreement = consensusAgreement({
    consensus,
    candidates: () => [...new Set(libp2p.getConnections().map(c => c.remotePeer.toString()))],
    onAgreement: (agent, agreed) => { router.agreement(agent, agreed) },
    ...(canaries === undefined
      ? {}
      : {
          onDissent: agents => { canaries.desk.dissent(agents) },
          qualify: (agents, done) => { canaries.desk.qualify(agents, done) },
          onCommit: agreed => { canaries.desk.noteAgreement(agreed) },
          standings: () => canaries.desk.suspects.view(consensus.book),
          suspended,
          retest: (agents, done) => { canaries.desk.retest(agents, done) }
        })
  })
  const taskRouter = {
    route: async (request: CapabilityRequest, exclude: string[]) => await router.route(request, exclude),
    settle: (subtask: string, agent: string, teach: 'nothing' | 'failure') => { router.settle(subtask, agent, teach) },
    outcome: (o: DispatchOutcome) => {
      router.outcome(o)
      if (o.result.ok) canaries?.desk.check(o.agent, 'dispatch')
    }
  }
  const journal = TaskJournal.open(join(config.dataDir, TASKS_FILE))
  const tasks = new TaskBoard(taskRouter, async (agent, input, ms, signal, sign) => await rpc.execute(agent, input, ms, signal, sign), {
    agreement,
    journal,
    activity,
    log: logger.forComponent('agentmesh:tasks'),
    // The input is checked against the agent's signed schema before it is sent (and filled in with the request text where that fits).
    prepareInput: (agent, input, request) => prepareFromSchema(capability.get(agent)?.body.inputSchema, splitAgentId(agent)?.name ?? agent, input, request)
  })
  const recovered: Recovered = {
    tasksEnded: tasks.recover(),
    staleTemps,
    damaged: [
      ...damaged,
      ...consensus.damaged,
      ...journal.damage
    ]
  }
  for (const d of recovered.damaged) activity.emit({ type: 'store-damaged', ...d })
  if (staleTemps.length > 0) activity.emit({ type: 'stale-temp-files-removed', files: staleTemps })

  const upgrades = isLocal(settings) ? undefined : upgradeRelayed(libp2p)
  return {
    peerId: libp2p.peerId.toString(),
    dataDir: config.dataDir,
    network: settings,
    guard,
    upgrades,
    libp2p,
    capability,
    rpc: libp2p.services.rpc,
    consensus,
    suspects: canaries?.desk.suspects ?? new Suspects(),
    router,
    index,
    whenIndexed: async () => { await sync.idle() },
    activity,
    metrics,
    tasks,
    recovered,
    agents,
    reloadAgents (specs) {
      const next = new Map<string, { agent: Agent, key: string }>()
      for (const spec of specs) {
        const agent = createAgent(spec)
        const name = agent.describe().name
        if (next.has(name) || (agents.has(name) && !fromSpecs.has(name)) || hosted.has(name)) throw new PeerStartError(`two agents are named "${name}" — give each a unique name`)
        checkAdvertisable(toLocalAgent(agent))
        next.set(name, { agent, key: JSON.stringify(spec) })
      }
      const total = next.size + [...agents.keys()].filter(name => !fromSpecs.has(name)).length
      const quota = quotaOf(settings)
      if (total > quota) throw new PeerStartError(`${total} agents, but network "${settings.network.name}" lets a host advertise ${quota} — host fewer, or raise maxAgentsPerHost in the network file`)
      const done: AgentsReloaded = { added: [], changed: [], removed: [] }
      for (const name of [...fromSpecs.keys()]) {
        if (next.has(name)) continue
        capability.withdraw(name)
        saveState() // the tombstone used a version too
        agentHost.remove(name)
        agents.delete(name)
        fromSpecs.delete(name)
        done.removed.push(name)
      }
      for (const [name, { agent, key }] of next) {
        const before = fromSpecs.get(name)
        if (before === key) continue
        ;(before === undefined ? done.added : done.changed).push(name)
        agents.set(name, agent)
        agentHost.set(name, agent)
        fromSpecs.set(name, key)
        capability.advertise(toLocalAgent(agent))
      }
      return done
    },
    hostAgent (agent) {
      const local = toLocalAgent(agent)
      if (agents.has(local.name) && !hosted.has(local.name)) throw new PeerStartError(`an agent named "${local.name}" is already hosted here`)
      if (!hosted.has(local.name) && agents.size >= quotaOf(settings)) throw new PeerStartError(`this host already advertises ${agents.size} agents, all that network "${settings.network.name}" allows (maxAgentsPerHost)`)
      checkAdvertisable(local)
      hosted.add(local.name)
      agents.set(local.name, agent)
      agentHost.set(local.name, agent)
      capability.advertise(local)
    },
    unhostAgent (name) {
      if (!hosted.delete(name)) return false
      capability.withdraw(name)
      saveState() // the tombstone used a version too
      agentHost.remove(name)
      agents.delete(name)
      return true
    },
    agentRoom: () => Math.max(0, quotaOf(settings) - agents.size),
    multiaddrs: () => libp2p.getMultiaddrs().map(String),
    async dial (addrs, timeoutMs = 5000, options = {}) {
      const failures: Array<{ addr: string, error: string }> = []
      await Promise.all(addrs.map(async addr => {
        try {
          const connection = await libp2p.dial(parseAddr(addr, 'peer address'), { signal: AbortSignal.timeout(timeoutMs) })
          // libp2p's reconnect queue re-dials a peer tagged keep-alive when its link drops.
          if (options.keepAlive === true) await libp2p.peerStore.merge(connection.remotePeer, { tags: { [KEEP_ALIVE_MESH]: { value: 50 } } })
        } catch (err) {
          failures.push({ addr, error: explainDialError(err as Error) })
        }
      }))
      return failures
    },
    async stop () {
      capability.removeEventListener('agent:advertised', saveStateSoon)
      tasks.cancelAll('peer stopping')
      // Cancelled tasks end at once; their reports reach the journal before it closes.
      await tasks.settled()
      journal.close()
      stopBans()
      clearInterval(maintenance)
      canaries?.stop()
      await libp2p.stop() // its services too: consensus flushes its log and book

      upgrades?.stop()
      await Promise.all([policyFile.flush(), sync.idle()])
      await savePeerState(config.dataDir, capability.records(), index, sync.texts(), log)
      lock.release()
    }
  }
}

/** Agents a host may advertise in this network: what every peer's table holds of one host. */
function quotaOf (settings: NetworkSettings): number {
  return settings.network.maxAgentsPerHost ?? DEFAULT_MAX_AGENTS_PER_HOST
}

export function toLocalAgent (agent: Agent): LocalAgent {
  const d = agent.describe()
  return {
    name: d.name,
    description: d.description,
    skills: d.skills,
    inputSchema: d.inputSchema,
    outputSchema: d.outputSchema,
    costPerCall: d.costPerCall,
    latencyMs: d.latencyMs,
    capacity: d.capacity,
    policy: d.policy
  }
}

function parseAddr (addr: string, what: string): ReturnType<typeof multiaddr> {
  try {
    return multiaddr(addr)
  } catch {
    throw new PeerStartError(`${what} "${addr}" is not a multiaddr — write it like /ip4/127.0.0.1/tcp/7100 (add /p2p/<peer id> for a peer to dial)`)
  }
}

/** The saved index, or an empty one (the table's events refill it); a damaged one is set aside and said. */
async function loadIndex (dir: string, embedder: Embedder, damaged: Damage[]): Promise<CapabilityIndex> {
  try {
    return CapabilityIndex.load(dir, { model: embedder.model, dims: embedder.dims })
  } catch (err) {
    // None yet, or made with another embedder or format: not damage, just rebuilt. Anything
    // else (a torn shard, vectors of the wrong length, a bad member) is damage, set aside and said.
    if (!/^no capability index at|has format version|built with embedding model|dimensional vectors, but this peer/.test((err as Error).message)) {
      damaged.push(await setAside(dir, err as Error, 'nothing: the index is rebuilt from the table'))
    }
    return new CapabilityIndex({ model: embedder.model, dims: embedder.dims })
  }
}

async function readRecords (path: string, damaged: Damage[]): Promise<Uint8Array[]> {
  const records = await readOrSetAside(path, bytes => {
    const value = decodeCanonical(bytes)
    if (!Array.isArray(value) || !value.every(r => r instanceof Uint8Array)) throw new Error('not a list of signed records')
    return value as Uint8Array[]
  }, 'the saved table of agents: peers send it again through anti-entropy', damaged)
  return records ?? []
}

function textsOf (bytes: Buffer): Record<string, string> {
  const value = JSON.parse(bytes.toString('utf8')) as unknown
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.values(value).some(v => typeof v !== 'string')) throw new Error('not a map of texts')
  return value as Record<string, string>
}

async function savePeerState (dir: string, records: Uint8Array[], index: CapabilityIndex, texts: Record<string, string>, log: Pick<Logger, 'error'>): Promise<void> {
  try {
    await writeAtomic(join(dir, TABLE_FILE), encodeCanonical(records))
    index.save(join(dir, INDEX_DIR))
    await writeAtomic(join(dir, TEXTS_FILE), JSON.stringify(texts))
  } catch (err) {
    log.error('could not save the table and index in %s: %e', dir, err)
  }
}

/** The saved policy, or a fresh one of that name when there is none (or it was another policy's). */
async function loadPolicy (path: string, name: string, damaged: Damage[]): Promise<SelectionPolicy> {
  if (!isPolicyName(name)) throw new PeerStartError(`unknown routing policy "${name}" — use one of ${POLICY_NAMES.join(', ')}`)
  const saved = await readOrSetAside(path, bytes => restorePolicy(JSON.parse(bytes.toString('utf8'))), `what the ${name} routing policy had learned: it starts fresh`, damaged)
  return saved !== undefined && saved.name === name ? saved : createPolicy(name)
}

async function readState (path: string, damaged: Damage[]): Promise<{ versions: Record<string, number> }> {
  const state = await readOrSetAside(path, bytes => {
    const parsed = JSON.parse(bytes.toString('utf8')) as { versions?: unknown }
    const versions = parsed?.versions ?? {}
    if (typeof versions !== 'object' || versions === null || Object.values(versions).some(v => !Number.isSafeInteger(v))) throw new Error('versions is not a map of integers')
    return { versions: versions as Record<string, number> }
  // Advertising again from 0 would be ignored as stale: the table learns the old versions back from peers.
  }, "this host's advertisement version counters: its next records jump past the versions peers hold", damaged)
  return state ?? { versions: {} }
}

function explainStartError (err: NodeJS.ErrnoException, listen: string[]): Error {
  // A file system error (the consensus service loads the data directory as it starts) is not about listening.
  if (err.path !== undefined) return err
  const text = `${err.code ?? ''} ${err.message}`
  if (text.includes('EADDRINUSE')) {
    return new PeerStartError(`cannot listen on ${listen.join(', ')}: the port is already in use — choose another port (--port / --base-port) or stop the process holding it`)
  }
  if (text.includes('EADDRNOTAVAIL')) {
    return new PeerStartError(`cannot listen on ${listen.join(', ')}: that address is not on this machine — use 127.0.0.1 or one of this host's addresses`)
  }
  if (text.includes('EACCES')) {
    return new PeerStartError(`cannot listen on ${listen.join(', ')}: permission denied — use a port above 1024`)
  }
  return err
}

/** Dials the hosts of `agentIds` that this peer has no open connection to, in parallel. */
async function connectHosts (libp2p: Libp2p<PeerServices>, agentIds: string[], timeoutMs: number): Promise<void> {
  const self = libp2p.peerId.toString()
  const connected = new Set(libp2p.getConnections().filter(c => c.status === 'open').map(c => c.remotePeer.toString()))
  const hosts = [...new Set(agentIds.map(a => a.split('/')[0]!))].filter(h => h !== self && !connected.has(h))
  await Promise.allSettled(hosts.map(async h => await libp2p.dial(peerIdFromString(h), { signal: AbortSignal.timeout(timeoutMs) })))
}
