/**
 * SIGHUP re-reads the agents file, as daemons do: new agents are advertised, changed ones advertised
 * again with a new version, removed ones withdrawn, without restarting the peer. A broken file
 * changes nothing and says why.
 */
import { ConfigError, loadAgentsFile } from '../agents/config.ts'
import { PeerStartError, type Peer } from '../peer.ts'
import type { Say } from './progress.ts'

export function reloadAgentsOnHangup (peer: Peer, file: string, say: Say): () => void {
  const onHangup = (): void => {
    try {
      const r = peer.reloadAgents(loadAgentsFile(file))
      const lists: Array<[string, string[]]> = [['added', r.added], ['changed', r.changed], ['removed', r.removed]]
      const parts = lists.filter(([, l]) => l.length > 0).map(([w, l]) => `${w} ${l.join(', ')}`)
      say('agents-reloaded', { file, ...r }, `reloaded ${file}: ${parts.length > 0 ? parts.join('; ') : 'no change'}`)
    } catch (err) {
      // A signal handler that throws would kill a running peer over a bad file: say why and go on.
      const known = err instanceof ConfigError || err instanceof PeerStartError
      const error = known ? err.message : `unexpected error: ${(err as Error).stack ?? String(err)}`
      say('agents-reload-failed', { file, error }, `not reloaded, the agents stay as they were: ${error}`)
    }
  }
  process.on('SIGHUP', onHangup)
  return () => { process.off('SIGHUP', onHangup) }
}
