/**
 * `agentmesh join`: a long-running peer that enters a network from anywhere, NAT included. It
 * prints its progress (dialled, identified, DHT ready, gossip joined, peers and agents known)
 * and its reachability verdict each time it changes.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { loadAgentsFile } from '../agents/config.ts'
import { defaultAgentSpecs } from '../agents/registry.ts'
import type { NodeConfig } from '../config.ts'
import { loadNetwork } from '../network/network-file.ts'
import { LOCAL_NETWORK, NetworkFileError } from '../../protocols/network/index.ts'
import { integer, oneOf, parse, UsageError } from './args.ts'
import { logActivity } from './activity-log.ts'
import { LOG_LEVELS, makeLogger } from './logger.ts'
import { followNetwork, printReady } from './network-output.ts'
import type { Say } from './progress.ts'
import { reloadAgentsOnHangup } from './reload.ts'
import { API_FLAGS, apiFlags, gracefulStop, launch, STOP_BUDGET_MS, stopWithin } from './node-command.ts'
import { API_PORT_OFFSET, defaultDataDir, DEFAULT_PORT } from './shared.ts'

export const joinHelp = `agentmesh join <MULTIADDR…|NETWORK> [--network NAME|FILE] [--agents FILE] [--listen MULTIADDR]…
               [--announce MULTIADDR]… [--api-port P | --api-listen HOST:PORT --api-tls-cert FILE --api-tls-key FILE]
               [--api-allow-origin URL]… [--data DIR] [--ttl SECONDS] [--policy NAME] [--no-hole-punching] [--json]
               [--log-level LEVEL]

Joins a network and runs until Ctrl-C. Give the bootstrap addresses a public node printed
(agentmesh join /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW… --network testnet), or a network file
whose bootstrap list it dials (agentmesh join testnet.yaml). Behind NAT it takes a circuit relay
reservation and upgrades relayed connections to direct ones by WebRTC hole punching, with the
network file's STUN servers. It prints its progress and its reachability; an unreachable
bootstrap peer is retried with backoff. Listens on /ip4/0.0.0.0/tcp/0 unless --listen is given;
the API is on 127.0.0.1:${DEFAULT_PORT + API_PORT_OFFSET} unless --api-port (0: none). SIGHUP re-reads --agents: new agents
are advertised, changed ones re-advertised, removed ones withdrawn, without a restart.
The API flags are those of agentmesh node (see agentmesh help node). Reroutes, escalations,
rejections and what a restart recovered are logged as agentmesh node logs them (--log-level:
trace, debug, info (default), warn, error, fatal).`

export async function joinCommand (argv: string[]): Promise<number> {
  const { values, positionals } = parse('join', argv, {
    network: { type: 'string' },
    agents: { type: 'string' },
    listen: { type: 'string', multiple: true },
    announce: { type: 'string', multiple: true },
    'api-port': { type: 'string' },
    ...API_FLAGS,
    data: { type: 'string' },
    ttl: { type: 'string' },
    policy: { type: 'string' },
    'no-hole-punching': { type: 'boolean' },
    json: { type: 'boolean' },
    'log-level': { type: 'string' }
  }, true)
  // An absolute path to a network file also starts with '/': a file on disk (or a .yaml name) is a network.
  const isAddr = (p: string): boolean => p.startsWith('/') && !/\.ya?ml$/i.test(p) && !existsSync(p)
  const addrs = positionals.filter(isAddr)
  const named = positionals.filter(p => !isAddr(p))
  if (named.length > 1 || (named.length === 1 && values.network !== undefined)) throw new UsageError('join: name one network (a network file or name), either as an argument or with --network')
  if (positionals.length === 0) throw new UsageError('join: give the address a public node printed (/ip4/…/tcp/…/p2p/12D3KooW…) or a network file')
  let network
  try {
    network = loadNetwork(named[0] ?? values.network, defaultDataDir())
  } catch (err) {
    if (err instanceof NetworkFileError) throw new UsageError(`join: ${err.message}`)
    throw err
  }
  if (network.name === LOCAL_NETWORK && named.length === 0 && values.network === undefined && addrs.length > 0) {
    // Addresses without a network: the local network's protocols would not match a testnet; say how.
    console.error('join: no --network given, so this peer joins the "local" network; a testnet node prints the --network to use')
  }
  const bootstrap = [...addrs, ...network.bootstrap]
  if (bootstrap.length === 0) throw new UsageError(`join: network "${network.name}" lists no bootstrap peers — give one's address`)
  const config: NodeConfig = {
    port: 0,
    listen: values.listen ?? ['/ip4/0.0.0.0/tcp/0'],
    bootstrap,
    network,
    public: false,
    ...(values['no-hole-punching'] === true ? { holePunching: false } : {}),
    announce: values.announce ?? [],
    apiPort: integer('join', 'api-port', values['api-port'], DEFAULT_PORT + API_PORT_OFFSET, 0, 65535),
    data: values.data ?? join(defaultDataDir(), 'networks', network.name, 'peer'),
    ttlSeconds: integer('join', 'ttl', values.ttl, 60, 2, 86_400),
    agents: values.agents !== undefined ? loadAgentsFile(values.agents) : defaultAgentSpecs(),
    ...(values.policy !== undefined ? { policy: values.policy } : {}),
    ...apiFlags('join', values)
  }
  const log = makeLogger({ level: oneOf('join', 'log-level', values['log-level'], LOG_LEVELS, 'info'), ...(values.json === true ? { json: true } : {}) })
  // Progress as before (JSON lines off a terminal or with --json); the activity through the log.
  const json = log.json
  const say: Say = (event, detail, text) => { console.log(json ? JSON.stringify({ event, ...detail }) : text) }
  const { peer, api, bridge } = await launch(config)
  const signalled = new Promise<void>(resolve => {
    process.once('SIGINT', () => resolve())
    process.once('SIGTERM', () => resolve())
  })
  // SIGHUP is handled before "ready": whoever reacts to that line may send it at once.
  const stopReload = values.agents !== undefined ? reloadAgentsOnHangup(peer, values.agents, say) : () => {}
  printReady(peer, api, json)
  const stopNetwork = followNetwork(peer, bootstrap, true, say)
  const stopActivity = logActivity(peer.activity, log, { recovered: peer.recovered })
  await signalled
  const watchdog = stopWithin(STOP_BUDGET_MS, log)
  stopReload()
  stopNetwork()
  stopActivity()
  await gracefulStop(peer, api, bridge)
  watchdog()
  log.flush()
  return 0
}
