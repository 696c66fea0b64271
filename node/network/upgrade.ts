/**
 * Relayed → direct: when a peer behind NAT is reached through a relay and advertises a WebRTC
 * address, dial it over WebRTC (SDP travels through the relay, ICE punches the NATs with the
 * network's STUN servers). This is the Node-capable replacement for DCUtR, whose TCP simultaneous
 * open needs SO_REUSEPORT. One side of each pair dials (the smaller peer id), so the pair does not
 * race two connections. The relayed connection is closed a while later: in-flight answers finish on
 * it, new streams already prefer the direct one.
 */
import type { Connection, Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'

const CLOSE_RELAYED_AFTER_MS = 30_000
const DIAL_TIMEOUT_MS = 20_000

export interface UpgradeEvent { peer: string, ok: boolean, ms: number, error?: string }

export interface DirectUpgrader {
  /** Pairs this peer upgraded (or whose upgrade failed), newest last. */
  readonly attempts: UpgradeEvent[]
  stop (): void
}

export function upgradeRelayed (libp2p: Libp2p, onEvent?: (e: UpgradeEvent) => void): DirectUpgrader {
  const self = libp2p.peerId.toString()
  const trying = new Set<string>()
  const attempts: UpgradeEvent[] = []
  const timers = new Set<NodeJS.Timeout>()
  let stopped = false

  const direct = (peer: string): Connection | undefined =>
    libp2p.getConnections().find(c => c.remotePeer.toString() === peer && c.limits === undefined && c.status === 'open')

  const onIdentify = (e: CustomEvent<{ peerId: { toString: () => string }, listenAddrs: Array<{ toString: () => string }>, connection: Connection }>): void => {
    const peer = e.detail.peerId.toString()
    if (stopped || e.detail.connection.limits === undefined || trying.has(peer) || direct(peer) !== undefined) return
    const addrs = e.detail.listenAddrs.map(String).filter(a => a.includes('/webrtc/') || a.endsWith('/webrtc'))
    if (addrs.length === 0) return
    // Both sides see the relayed connection; only one dials.
    if (self > peer) return
    trying.add(peer)
    const started = Date.now()
    void (async () => {
      let error: string | undefined
      for (const a of addrs) {
        const target = a.includes('/p2p/' + peer) ? a : `${a}/p2p/${peer}`
        try {
          await libp2p.dial(multiaddr(target), { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
          error = undefined
          break
        } catch (err) {
          error = (err as Error).message
        }
      }
      trying.delete(peer)
      const event: UpgradeEvent = { peer, ok: error === undefined, ms: Date.now() - started, ...(error !== undefined ? { error } : {}) }
      attempts.push(event)
      if (attempts.length > 1000) attempts.shift()
      onEvent?.(event)
      if (event.ok && !stopped) {
        const timer = setTimeout(() => {
          timers.delete(timer)
          if (direct(peer) === undefined) return
          for (const c of libp2p.getConnections()) {
            if (c.remotePeer.toString() === peer && c.limits !== undefined) void c.close().catch(() => {})
          }
        }, CLOSE_RELAYED_AFTER_MS)
        timers.add(timer)
      }
    })()
  }
  libp2p.addEventListener('peer:identify', onIdentify as never)
  return {
    attempts,
    stop () {
      stopped = true
      libp2p.removeEventListener('peer:identify', onIdentify as never)
      for (const t of timers) clearTimeout(t)
    }
  }
}
