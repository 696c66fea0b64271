// Real peers on 127.0.0.1 for a test file: each gets a fresh data directory, and everything a
// test started is stopped and deleted after it, pass or fail.
import { afterEach } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultAgentSpecs } from '../../node/agents/registry.ts'
import { startPeer, type Peer, type PeerConfig } from '../../node/peer.ts'

export function usePeers (prefix: string): { peer: (options?: Partial<PeerConfig>) => Promise<Peer>, stop: (p: Peer) => Promise<void> } {
  const running: Peer[] = []
  const dirs: string[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map(async p => { await p.stop() }))
    await Promise.all(dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) }))
  })
  return {
    /** Starts a peer with the demo agents on an ephemeral port (options override). */
    async peer (options = {}) {
      const dataDir = options.dataDir ?? await mkdtemp(join(tmpdir(), prefix))
      if (!dirs.includes(dataDir)) dirs.push(dataDir)
      const p = await startPeer({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], agents: defaultAgentSpecs(), ...options })
      running.push(p)
      return p
    },
    /** Stops a peer mid-test (its data directory stays until the test ends). */
    async stop (p) {
      running.splice(running.indexOf(p), 1)
      await p.stop()
    }
  }
}
