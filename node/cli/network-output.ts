/** What `node` and `join` print about the network: the ready lines, the join line, progress. */
import { keepBootstrapped, type BootstrapEvent } from '../network/bootstrap.ts'
import type { Peer } from '../peer.ts'
import { watchProgress, type Say } from './progress.ts'
import { dashboardUrl } from '../api/ui-routes.ts'
import { logEvent, type EventLogger } from './logger.ts'

type ApiInfo = { port: number, url: string, token: string, tokenPath: string } | undefined

/** The fields of the "ready" line. */
export function readyInfo (peer: Peer, api: ApiInfo) {
  return {
    peerId: peer.peerId,
    network: peer.network.network.name,
    multiaddrs: peer.multiaddrs(),
    api: api?.url ?? null,
    apiToken: api?.tokenPath ?? null,
    dashboard: api !== undefined ? `${api.url}/ui` : null,
    agents: [...peer.agents.keys()],
    ...(peer.network.public ? { join: joinLine(peer) } : {})
  }
}

/** The ready line(s): a log record when the log is JSON (said whatever the level), else text. */
export function sayReady (log: EventLogger, peer: Peer, api: ApiInfo): void {
  if (log.json) logEvent(log.child({}, { level: 'info' }), 'info', 'ready', readyInfo(peer, api))
  else printReady(peer, api, false)
}

export function printReady (peer: Peer, api: ApiInfo, json: boolean): void {
  const info = readyInfo(peer, api)
  if (json) {
    console.log(JSON.stringify({ event: 'ready', ...info }))
    return
  }
  console.log(`agentmesh peer ${peer.peerId} (network ${info.network}${peer.network.public ? ', public node' : ''})`)
  for (const a of info.multiaddrs) console.log(`  listening  ${a}`)
  if (api !== undefined) {
    console.log(`  api        ${api.url}  (agentmesh peers --api-port ${api.port}; token in ${api.tokenPath})`)
    // The token rides in the fragment, which the browser never sends to the server.
    console.log(`  dashboard  ${dashboardUrl(api.url, api.token)}`)
  }
  console.log(`  hosting    ${info.agents.join(', ')}`)
  if (info.join !== undefined) console.log(`\nTo join this network from another machine, run:\n  ${info.join}\n`)
}

/** The one line others paste to join this public node (its announced, else dialable, addresses). */
export function joinLine (peer: Peer): string {
  const addrs = peer.network.announce.length > 0
    ? peer.network.announce.map(a => a.includes('/p2p/') ? a : `${a}/p2p/${peer.peerId}`)
    : peer.multiaddrs().filter(a => !a.includes('/p2p-circuit') && !/\/ip4\/(127\.|0\.0\.0\.0)/.test(a))
  const network = peer.network.network.name === 'local' ? '' : ` --network ${peer.network.network.name}`
  return `agentmesh join ${addrs.slice(0, 2).join(' ') || '<this host\'s public address>/p2p/' + peer.peerId}${network}`
}

/**
 * Keeps the bootstrap peers joined and says so (with progress, if asked) until the returned
 * function is called. Refused peers are said by the activity log (node/cli/activity-log.ts).
 */
export function followNetwork (peer: Peer, bootstrap: string[], progress: boolean, say: Say): () => void {
  const keeper = keepBootstrapped(peer.libp2p, bootstrap, (e: BootstrapEvent) => {
    if (e.type === 'dialling') say('dialling', { addr: e.addr, attempt: e.attempt }, `dialling ${e.addr}${e.attempt > 0 ? ` (attempt ${e.attempt + 1})` : ''}`)
    if (e.type === 'connected') say('dialled', { addr: e.addr, peer: e.peer, ms: e.ms }, `dialled ${e.addr} (${e.ms} ms)`)
    if (e.type === 'failed') {
      const retry = e.retryInMs < 0 ? 'not retried' : `retrying in ${(e.retryInMs / 1000).toFixed(1)} s`
      say('dial-failed', { addr: e.addr, error: e.error, retryInMs: e.retryInMs }, `bootstrap ${e.addr}: ${e.error} — ${retry}`)
    }
    if (e.type === 'lost') say('bootstrap-lost', { addr: e.addr, peer: e.peer }, `lost the connection to bootstrap ${e.addr}; dialling it again`)
  })
  const stopProgress = progress ? watchProgress(peer, say) : () => {}
  return () => { keeper.stop(); stopProgress() }
}
