/**
 * `agentmesh node`: one long-running peer. Under `agentmesh up` it runs as a child process and
 * reports to its parent over the IPC channel instead of printing.
 */
import { startApi, type Api, type ApiOptions } from '../api/api.ts'
import { apiTls, parseApiListen, parseOrigins } from '../api/listen.ts'
import { loadAgentsFile } from '../agents/config.ts'
import { defaultAgentSpecs } from '../agents/registry.ts'
import { loadNodeConfig, type NodeConfig, type NodeConfigFile } from '../config.ts'
import { PeerStartError, startPeer, type Peer } from '../peer.ts'
import { MqttBridgeError, startMqttBridge, type MqttBridge } from '../services/mqtt-bridge.ts'
import { hasIdentity } from '../storage/identity.ts'
import { vcvJson } from '../api/present.ts'
import { ed25519Verifier, rememberingVerifier } from '../network/crypto.ts'
import { HashEmbedder, type Embedder } from '../../capability-index/index.ts'
import type { Verifier } from '../../protocols/identity.ts'
import { integer, oneOf, parse, UsageError } from './args.ts'
import { logActivity } from './activity-log.ts'
import { LOG_LEVELS, logEvent, makeLogger, sayTo, type EventLogger } from './logger.ts'
import { defaultDataDir, DEFAULT_PORT, type ChildMessage, type ParentMessage } from './shared.ts'
import { join } from 'node:path'
import { LOCAL_NETWORK } from '../../protocols/network/index.ts'
import { loadNetwork } from '../network/network-file.ts'
import { isLocal, LOCAL, type NetworkSettings } from '../network/settings.ts'
import { followNetwork, sayReady } from './network-output.ts'
import { reloadAgentsOnHangup } from './reload.ts'

export const nodeHelp = `agentmesh node [--config FILE] [--agents FILE] [--port P] [--listen MULTIADDR]…
               [--bootstrap MULTIADDR]… [--network NAME|FILE] [--public] [--announce MULTIADDR]…
               [--api-port P | --api-listen HOST:PORT --api-tls-cert FILE --api-tls-key FILE]
               [--api-allow-origin URL]… [--data DIR] [--ttl SECONDS] [--policy NAME]
               [--mqtt URL [--mqtt-ca FILE]] [--json] [--log-level LEVEL]

Runs one peer until Ctrl-C. It listens on 127.0.0.1:P (default ${DEFAULT_PORT}), serves its API on
127.0.0.1:P+1000, hosts the agents of --agents (default: the six demo agents) and joins the peers
given with --bootstrap (their full address, /ip4/…/tcp/…/p2p/<peer id>).
--network picks the network: "local" (default, this machine), a network file (YAML: name,
bootstrap, stun, psk, privateAddresses) or a network name; its bootstrap list is dialled too.
--public makes this a public node of that network (DHT server, circuit relay, bootstrap for
others): listen on a public interface (--listen /ip4/0.0.0.0/tcp/4001 --listen
/ip4/0.0.0.0/tcp/4002/ws) and --announce the address others dial; it prints the line to join it.
On a network other than local, an unreachable bootstrap peer is retried with backoff for ever.
--config FILE reads the same settings from YAML (listen, port, apiPort, data, bootstrap, network,
announce, public, ttlSeconds, agents, policy, canaries, apiListen, apiTlsCert, apiTlsKey,
apiAllowOrigins, mqtt, logLevel); flags override the file. --policy picks
the routing selector: linucb (default), symphony, epsilon-greedy, greedy-similarity, round-robin
or random. SIGHUP re-reads --agents (added, changed and removed agents, no restart).
The API needs the token in DIR/api-token (created on first start, mode 0600) for every POST;
--api-listen serves it on another address, which needs HTTPS (--api-tls-cert/--api-tls-key, PEM)
and then the token on every route. --api-allow-origin lets the web pages of that origin call it.
--mqtt URL bridges an MQTT 5 broker (mqtt://, mqtts://, ws://, wss://): agents that advertise
under agentmesh/v1/<network>/agents/<username>/ join the mesh through this peer, and tasks
published to agentmesh/v1/<network>/clients/<username>/tasks/submit run here. The broker
username and password come from AGENTMESH_MQTT_USERNAME and AGENTMESH_MQTT_PASSWORD;
--mqtt-ca names the PEM file of the broker's CA. See README, "Agents in any language".
It logs what happens (the "ready" line, reroutes, escalations, rejections, recovery, tasks, agents)
as JSON lines (pino) when stdout is not a terminal or with --json, readable lines on a terminal;
--log-level (or logLevel: in the config file) is trace, debug, info (default), warn, error, fatal
or silent. The "ready" line is always printed.`

export async function nodeCommand (argv: string[]): Promise<number> {
  const { values } = parse('node', argv, {
    config: { type: 'string' },
    agents: { type: 'string' },
    port: { type: 'string' },
    listen: { type: 'string', multiple: true },
    bootstrap: { type: 'string', multiple: true },
    'api-port': { type: 'string' },
    ...API_FLAGS,
    data: { type: 'string' },
    ttl: { type: 'string' },
    json: { type: 'boolean' },
    'log-level': { type: 'string' },
    policy: { type: 'string' },
    network: { type: 'string' },
    public: { type: 'boolean' },
    announce: { type: 'string', multiple: true },
    mqtt: { type: 'string' },
    'mqtt-ca': { type: 'string' },
    child: { type: 'boolean' },
    'peer-group': { type: 'string' }
  })
  const file: NodeConfigFile = values.config !== undefined ? loadNodeConfig(values.config) : {}
  const port = integer('node', 'port', values.port, file.port ?? DEFAULT_PORT, 1, 65535)
  const network = loadNetwork(values.network ?? file.network, defaultDataDir())
  const config: NodeConfig = {
    port,
    listen: values.listen ?? file.listen ?? [`/ip4/127.0.0.1/tcp/${port}`],
    bootstrap: [...values.bootstrap ?? file.bootstrap ?? [], ...network.bootstrap],
    network,
    public: values.public ?? file.public ?? false,
    announce: values.announce ?? file.announce ?? [],
    apiPort: integer('node', 'api-port', values['api-port'], file.apiPort ?? port + 1000, 0, 65535),
    data: values.data ?? file.data ?? (network.name === LOCAL_NETWORK ? join(defaultDataDir(), 'node') : join(defaultDataDir(), 'networks', network.name, 'node')),
    ttlSeconds: integer('node', 'ttl', values.ttl, file.ttlSeconds ?? 60, 2, 86_400),
    agents: values.agents !== undefined ? loadAgentsFile(values.agents) : file.agents ?? defaultAgentSpecs(),
    ...(values.policy ?? file.policy) !== undefined ? { policy: values.policy ?? file.policy } : {},
    ...(file.canaries !== undefined ? { canaries: file.canaries } : {}),
    ...mqttFlags(values, file),
    ...apiFlags('node', values, file),
    // Under `up` the parent owns stdout: a child logs only warnings and worse, on stderr.
    logLevel: oneOf('node', 'log-level', values['log-level'], LOG_LEVELS, file.logLevel ?? (values.child === true ? 'warn' : 'info'))
  }
  if (values.child === true) {
    // Without --peer-group: one peer, exactly as the flags say (the adversary harness listens on --listen).
    if (values['peer-group'] === undefined) return await runChild([{ index: 0, config }])
    return await runChild(parsePeerGroup(values['peer-group']).map(g => ({ index: g.index, config: { ...config, port: g.port, listen: [`/ip4/127.0.0.1/tcp/${g.port}`], apiPort: g.apiPort, data: g.data } })))
  }
  return await runForeground(config, values.json === true, values.agents)
}

/** The network settings a node config asks for. */
export function networkSettings (config: NodeConfig): NetworkSettings {
  return { network: config.network ?? LOCAL, public: config.public ?? false, announce: config.announce ?? [], ...(config.holePunching === false ? { holePunching: false } : {}) }
}

/** Keys of MQTT agents that sign their replies, pinned by the bridge (delete an entry to let an agent change keys). */
const MQTT_PINS_FILE = 'mqtt-keys.json'

/** The MQTT bridge's settings: --mqtt and --mqtt-ca over the config file's `mqtt:`. */
function mqttFlags (values: { mqtt?: string | undefined, 'mqtt-ca'?: string | undefined }, file: NodeConfigFile): Pick<NodeConfig, 'mqtt'> {
  const base = values.mqtt !== undefined ? { ...file.mqtt, url: values.mqtt } : file.mqtt
  if (base === undefined) {
    if (values['mqtt-ca'] !== undefined) throw new UsageError('node: --mqtt-ca goes with --mqtt URL (or mqtt: in the config file)')
    return {}
  }
  return { mqtt: { ...base, ...(values['mqtt-ca'] !== undefined ? { ca: values['mqtt-ca'] } : {}) } }
}

/** The API flags `node` and `join` share. */
export const API_FLAGS = {
  'api-listen': { type: 'string' },
  'api-tls-cert': { type: 'string' },
  'api-tls-key': { type: 'string' },
  'api-allow-origin': { type: 'string', multiple: true }
} as const

type ApiFlagValues = { 'api-port'?: string | undefined, 'api-listen'?: string | undefined, 'api-tls-cert'?: string | undefined, 'api-tls-key'?: string | undefined, 'api-allow-origin'?: string[] | undefined }

/** The API settings of a node config from the flags (over the config file's). */
export function apiFlags (command: string, values: ApiFlagValues, file: NodeConfigFile = {}): Pick<NodeConfig, 'apiListen' | 'apiTlsCert' | 'apiTlsKey' | 'apiAllowOrigins'> {
  if (values['api-listen'] !== undefined && values['api-port'] !== undefined) throw new UsageError(`${command}: give --api-port P (on 127.0.0.1) or --api-listen HOST:PORT, not both`)
  const listen = values['api-listen'] ?? (values['api-port'] === undefined ? file.apiListen : undefined)
  const cert = values['api-tls-cert'] ?? file.apiTlsCert
  const key = values['api-tls-key'] ?? file.apiTlsKey
  const origins = values['api-allow-origin'] ?? file.apiAllowOrigins
  return {
    ...(listen !== undefined ? { apiListen: listen } : {}),
    ...(cert !== undefined ? { apiTlsCert: cert } : {}),
    ...(key !== undefined ? { apiTlsKey: key } : {}),
    ...(origins !== undefined ? { apiAllowOrigins: origins } : {})
  }
}

/** Where and how the API serves, or undefined for none; a mistake is a PeerStartError before anything starts. */
export function apiOptions (config: NodeConfig): ApiOptions | undefined {
  if (config.apiListen === undefined && config.apiPort === 0) return undefined
  const { host, port } = config.apiListen !== undefined ? parseApiListen(config.apiListen) : { host: '127.0.0.1', port: config.apiPort }
  const tls = apiTls(host, { ...(config.apiTlsCert !== undefined ? { cert: config.apiTlsCert } : {}), ...(config.apiTlsKey !== undefined ? { key: config.apiTlsKey } : {}) })
  return { port, host, ...(tls !== undefined ? { tls } : {}), allowOrigins: parseOrigins(config.apiAllowOrigins ?? []), dataDir: config.data }
}

/** What peers sharing a process may share: one signature check and one embedding per record. */
export interface SharedWork { verifier: Verifier, embedder?: Embedder }

export async function launch (config: NodeConfig, say: (event: string, detail: Record<string, unknown>) => void = () => {}, shared?: SharedWork): Promise<{ peer: Peer, api?: Api | undefined, bridge?: MqttBridge | undefined }> {
  const api = apiOptions(config)
  const network = networkSettings(config)
  const work = network.network.idWorkBits ?? 0
  // Said on stderr (stdout may be --json): the first start on such a network pauses for seconds.
  if (work > 0 && !hasIdentity(config.data)) process.stderr.write(`making an identity with ${work} bits of proof of work, as network "${network.network.name}" asks (about 2^${work} key pairs: seconds to minutes on one core)…\n`)
  const peer = await startPeer({
    dataDir: config.data,
    listen: config.listen,
    agents: config.agents,
    ttlMs: config.ttlSeconds * 1000,
    network,
    ...(config.policy !== undefined ? { routingPolicy: config.policy } : {}),
    ...(config.canaries !== undefined ? { canaries: config.canaries } : {}),
    // A service's error an operator must hear of (services/logger.ts) goes into the log, not to stray stderr.
    warn: (component, message) => { say('service-error', { component, message }) },
    ...shared
  })
  let bridge: MqttBridge | undefined
  try {
    if (config.mqtt !== undefined) {
      const { url, ...rest } = config.mqtt
      bridge = await startMqttBridge(peer, { url, network: network.network.name, ...rest, onEvent: say, pinsFile: join(config.data, MQTT_PINS_FILE) })
    }
    return { peer, api: api !== undefined ? await startApi(peer, api, bridge) : undefined, bridge }
  } catch (err) {
    await bridge?.stop()
    await peer.stop()
    throw err instanceof MqttBridgeError ? new PeerStartError(err.message) : err
  }
}

async function runForeground (config: NodeConfig, json: boolean, agentsFile: string | undefined): Promise<number> {
  const log = makeLogger({ level: config.logLevel ?? 'info', ...(json ? { json } : {}) })
  const say = sayTo(log)
  const { peer, api, bridge } = await launch(config, say)
  const stop = (): Promise<void> => gracefulStop(peer, api, bridge)
  const settings = networkSettings(config)
  // The local network keeps its old contract: a peer that reaches none of its bootstrap peers stops.
  if (config.bootstrap.length > 0 && isLocal(settings) && !settings.public) {
    const failures = await peer.dial(config.bootstrap)
    for (const f of failures) console.error(`bootstrap ${f.addr}: ${f.error}`)
    if (failures.length === config.bootstrap.length) {
      console.error('could not reach any bootstrap peer — nothing was joined, so this peer stops. Check the addresses, or start without --bootstrap to begin a new mesh.')
      await stop()
      return 1
    }
  }
  // Listen for Ctrl-C and SIGHUP before saying "ready": whoever reacts to that line may signal at once.
  const signalled = waitForSignal()
  const stopReload = agentsFile !== undefined ? reloadAgentsOnHangup(peer, agentsFile, say) : () => {}
  const stopNetwork = isLocal(settings) && !settings.public ? () => {} : followNetwork(peer, config.bootstrap, false, say)
  // "ready" is the peer's address, not a log line: said whatever the level.
  sayReady(log, peer, api)
  // What the last run left unfinished is said loudly once (never a silent loss), then what happens.
  const stopActivity = logActivity(peer.activity, log, { recovered: peer.recovered })
  await signalled
  const watchdog = stopWithin(STOP_BUDGET_MS, log)
  stopReload()
  stopNetwork()
  stopActivity()
  await stop()
  watchdog()
  log.flush()
  return 0
}

/**
 * A graceful stop: take no new work (the API answers 503 and ends its live streams, the MQTT
 * bridge leaves the broker), end what is in flight (tasks are cancelled and their reports, which
 * waiting clients receive, journaled; the stores saved), then close the last connections.
 */
export async function gracefulStop (peer: Peer, api: Api | undefined, bridge: MqttBridge | undefined): Promise<void> {
  api?.drain()
  await bridge?.stop()
  await peer.stop()
  await api?.close()
}

/** How long a stop may take after SIGTERM or Ctrl-C before the process exits anyway. */
export const STOP_BUDGET_MS = 5000

/**
 * Exits with status 1 when the stop has not finished within `ms`, or at once on a second signal
 * (an operator pressing Ctrl-C twice means it). Nothing committed is lost that way: tasks are
 * journaled before dispatch and stores are written atomically. Returns the disarm function.
 */
export function stopWithin (ms: number, log: EventLogger): () => void {
  const force = (why: string): void => {
    logEvent(log, 'error', 'stop-forced', { budgetMs: ms, reason: why }, `stop did not finish within ${ms} ms (${why}); exiting now — tasks still running are journaled and end as escalated ("requester restarted") at the next start`)
    log.flush()
    process.exit(1)
  }
  const timer = setTimeout(() => { force('time is up') }, ms)
  timer.unref()
  const again = (): void => { force('a second signal') }
  process.once('SIGINT', again)
  process.once('SIGTERM', again)
  return () => {
    clearTimeout(timer)
    process.off('SIGINT', again)
    process.off('SIGTERM', again)
  }
}

/** One peer of a child process's group: its index in the mesh, ports and data directory. */
export interface GroupPeer { index: number, port: number, apiPort: number, data: string }

/** `--peer-group`: the JSON list `agentmesh up` hands a child, checked field by field. */
function parsePeerGroup (text: string): GroupPeer[] {
  let list: unknown
  try { list = JSON.parse(text) } catch { throw new UsageError('node: --peer-group must be a JSON list of {index, port, apiPort, data}') }
  if (!Array.isArray(list) || list.length === 0 || list.length > 200) throw new UsageError('node: --peer-group must list 1-200 peers')
  return list.map((g: Partial<GroupPeer>) => {
    const ok = typeof g === 'object' && g !== null && Number.isInteger(g.index) && Number.isInteger(g.port) && Number.isInteger(g.apiPort) && typeof g.data === 'string'
    if (!ok) throw new UsageError('node: each --peer-group entry needs index, port, apiPort (integers) and data (a directory)')
    return { index: g.index!, port: g.port!, apiPort: g.apiPort!, data: g.data! }
  })
}

/**
 * Child of `agentmesh up`: hosts one peer or a group of them (one process per peer costs ~1 s of
 * CPU to load and ~150 MiB, so large local meshes share processes), reports each over IPC tagged
 * with its index, dials when told, stops all when told or orphaned. Peers start one after another
 * and each says "ready" as it comes up: the parent waits on that progress, not a fixed time.
 */
async function runChild (group: Array<{ index: number, config: NodeConfig }>): Promise<number> {
  const send = (m: ChildMessage): void => { process.send?.(m) }
  // The parent keeps the tail of stderr to say why a peer died: warnings and worse go there.
  const log = makeLogger({ level: group[0]!.config.logLevel ?? 'warn', to: 2 })
  const running: Array<{ index: number, peer: Peer, api: Api | undefined, bridge: MqttBridge | undefined, stop: () => void }> = []
  let stopping = false
  const stopped = new Promise<void>(resolve => {
    const stop = (): void => { stopping = true; resolve() }
    process.on('message', (m: ParentMessage) => {
      if (m.type === 'stop') stop()
      if (m.type === 'usage') send({ type: 'usage', rssBytes: process.memoryUsage().rss })
      if (m.type !== 'dial' && m.type !== 'list') return
      const at = running.find(r => r.index === (m.peer ?? group[0]!.index))
      if (at === undefined) {
        // Asked about a peer this process does not run (yet): say so rather than leave the parent waiting.
        if (m.type === 'dial') send({ type: 'dialed', peer: m.peer ?? group[0]!.index, failures: m.addrs.map(addr => ({ addr, error: 'that peer is not running in this process' })) })
        else send({ type: 'list', peer: m.peer ?? group[0]!.index, agents: [] })
        return
      }
      if (m.type === 'dial') void at.peer.dial(m.addrs, undefined, { keepAlive: m.keepAlive === true }).then(failures => { send({ type: 'dialed', peer: at.index, failures }) })
      if (m.type === 'list') send({ type: 'list', peer: at.index, agents: at.peer.capability.agents().map(vcvJson) })
    })
    process.on('disconnect', stop) // parent died: never outlive it
    process.on('SIGTERM', stop)
    process.on('SIGINT', () => {}) // Ctrl-C reaches the whole group; the parent decides when we stop
  })
  let status = 0
  const shared: SharedWork | undefined = group.length > 1
    ? { verifier: rememberingVerifier(ed25519Verifier()), ...(process.env.AGENTMESH_EMBEDDINGS_URL === undefined ? { embedder: new HashEmbedder({ cache: 8192 }) } : {}) }
    : undefined
  for (const { index, config } of group) {
    if (stopping) break
    let launched
    try {
      launched = await launch(config, undefined, shared)
    } catch (err) {
      send({ type: 'fatal', peer: index, message: (err as Error).message })
      status = 1
      break
    }
    const { peer, api, bridge } = launched
    let pending: NodeJS.Timeout | undefined
    // The whole list each time: batched over 10 ms, and over longer as the table grows (a flood of
    // 10k agents must not turn into 100 lists of 10k ids a second on this process and the parent).
    const report = (): void => {
      pending ??= setTimeout(() => {
        pending = undefined
        send({ type: 'state', peer: index, agents: peer.capability.agents().map(v => v.body.agent) })
      }, Math.min(1000, Math.max(10, peer.capability.agents().length / 10)))
    }
    for (const e of ['agent:added', 'agent:removed'] as const) peer.capability.addEventListener(e, report)
    const stopActivity = logActivity(peer.activity, group.length > 1 ? log.child({ peer: index }) : log, { recovered: peer.recovered })
    running.push({ index, peer, api, bridge, stop: () => { stopActivity(); clearTimeout(pending) } })
    send({ type: 'ready', peer: index, peerId: peer.peerId, multiaddrs: peer.multiaddrs(), apiPort: api?.port ?? 0, localAgents: peer.agents.size })
    report()
  }
  if (status === 0) await stopped
  await Promise.all(running.map(async r => {
    r.stop()
    await gracefulStop(r.peer, r.api, r.bridge)
  }))
  // An open IPC channel keeps this process alive after its work is done (until bin's forced exit).
  if (process.connected) process.disconnect()
  return status
}

function waitForSignal (): Promise<void> {
  return new Promise(resolve => {
    process.once('SIGINT', () => resolve())
    process.once('SIGTERM', () => resolve())
  })
}
