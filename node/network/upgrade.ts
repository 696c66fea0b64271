/**
 * Relayed → direct: when a peer behind NAT is reached through a relay and advertises a WebRTC
 * address, dial it over WebRTC (SDP travels through the relay, ICE punches the NATs with the
 * network's STUN servers). This is the Node-capable replacement for DCUtR, whose TCP simultaneous
 * open needs SO_REUSEPORT. One side of each pair dials (the smaller peer id), so the pair does not
 * race two connections. The relayed connection is closed a while later: in-flight answers finish on
 * it, new streams already prefer the direct one.
 *
 * Identify of a relayed connection starts an attempt at once; a sweep every few seconds catches the
 * pairs identify did not (the peer's WebRTC address arrived later, by identify push) and retries a
 * failed pair with backoff, so a punch that lost a race is not given up for the life of the relay.
 */
import type { Connection, Libp2p, PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { retryDelay, type Backoff } from '../../protocols/network/index.ts'

const CLOSE_RELAYED_AFTER_MS = 30_000
const DIAL_TIMEOUT_MS = 20_000
const SWEEP_MS = 5_000
/** Retries of a failed punch: from 10 s up to 10 min. */
const RETRY: Backoff = { baseMs: 10_000, maxMs: 600_000 }

export interface UpgradeEvent { peer: string, ok: boolean, ms: number, attempt: number, error?: string }

export interface DirectUpgrader {
  /** Pairs this peer upgraded (or whose upgrade failed), newest last. */
  readonly attempts: UpgradeEvent[]
  /** Told of every attempt as it ends (the CLI prints them). */
  onEvent?: (e: UpgradeEvent) => void
  stop (): void
}

export function upgradeRelayed (libp2p: Libp2p, onEvent?: (e: UpgradeEvent) => void, random: () => number = Math.random): DirectUpgrader {
  const self = libp2p.peerId.toString()
  const trying = new Set<string>()
  /** Failed pairs: how many attempts so far, and when the next may start. */
  const failed = new Map<string, { attempts: number, nextAt: number }>()
  const attempts: UpgradeEvent[] = []
  const timers = new Set<NodeJS.Timeout>()
  let stopped = false

  const direct = (peer: string): Connection | undefined =>
    libp2p.getConnections().find(c => c.remotePeer.toString() === peer && c.limits === undefined && c.status === 'open')
  const webrtcAddrs = (addrs: Array<{ toString: () => string }>): string[] =>
    addrs.map(String).filter(a => a.includes('/webrtc/') || a.endsWith('/webrtc'))

  const attempt = (peer: string, addrs: string[]): void => {
    // Both sides see the relayed connection; only one dials.
    if (stopped || self > peer || trying.has(peer) || addrs.length === 0 || direct(peer) !== undefined) return
    const previous = failed.get(peer)
    if (previous !== undefined && Date.now() < previous.nextAt) return
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
      const n = (previous?.attempts ?? 0) + 1
      if (error === undefined) failed.delete(peer)
      else failed.set(peer, { attempts: n, nextAt: Date.now() + retryDelay(n - 1, random(), RETRY) })
      const event: UpgradeEvent = { peer, ok: error === undefined, ms: Date.now() - started, attempt: n, ...(error !== undefined ? { error } : {}) }
      attempts.push(event)
      if (attempts.length > 1000) attempts.shift()
      upgrader.onEvent?.(event)
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

  const onIdentify = (e: CustomEvent<{ peerId: { toString: () => string }, listenAddrs: Array<{ toString: () => string }>, connection: Connection }>): void => {
    if (e.detail.connection.limits === undefined) return
    attempt(e.detail.peerId.toString(), webrtcAddrs(e.detail.listenAddrs))
  }
  libp2p.addEventListener('peer:identify', onIdentify as never)

  const relayedOnly = (): PeerId[] => {
    const byPeer = new Map<string, PeerId>()
    for (const c of libp2p.getConnections()) if (c.limits !== undefined && c.status === 'open') byPeer.set(c.remotePeer.toString(), c.remotePeer)
    return [...byPeer.entries()].filter(([p]) => direct(p) === undefined).map(([, id]) => id)
  }
  const sweep = setInterval(() => {
    for (const id of relayedOnly()) {
      const peer = id.toString()
      if (self > peer || trying.has(peer)) continue
      void libp2p.peerStore.get(id).then(p => { attempt(peer, webrtcAddrs(p.addresses.map(a => a.multiaddr))) }, () => {})
    }
  }, SWEEP_MS)
  sweep.unref()

  const upgrader: DirectUpgrader = {
    attempts,
    ...(onEvent !== undefined ? { onEvent } : {}),
    stop () {
      stopped = true
      clearInterval(sweep)
      libp2p.removeEventListener('peer:identify', onIdentify as never)
      for (const t of timers) clearTimeout(t)
    }
  }
  return upgrader
}
