/**
 * Stays joined through the bootstrap list: dials every entry, retries the ones that fail with
 * backoff (for ever: a public node must not give up because one seed is down), and dials a seed
 * again when its connection drops. Every step is reported, so the user sees why it is waiting.
 */
import type { Libp2p } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { retryDelay } from '../../protocols/network/index.ts'
import { explainDialError } from './dial-errors.ts'

export type BootstrapEvent =
  | { type: 'dialling', addr: string, attempt: number }
  | { type: 'connected', addr: string, peer: string, ms: number }
  | { type: 'failed', addr: string, error: string, retryInMs: number }
  | { type: 'lost', addr: string, peer: string }

export interface BootstrapKeeper {
  /** Resolves once the first dial of every entry has finished (succeeded or failed). */
  readonly firstRound: Promise<Array<{ addr: string, error?: string }>>
  connected (): string[]
  stop (): void
}

const DIAL_TIMEOUT_MS = 10_000

export function keepBootstrapped (libp2p: Libp2p, addrs: string[], onEvent: (e: BootstrapEvent) => void, random: () => number = Math.random): BootstrapKeeper {
  let stopped = false
  const timers = new Set<NodeJS.Timeout>()
  const up = new Map<string, string>() // addr -> peer id
  const controller = new AbortController()

  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => { timers.delete(t); fn() }, ms)
    timers.add(t)
  }

  const dial = async (addr: string, attempt: number): Promise<string | undefined> => {
    if (stopped) return undefined
    onEvent({ type: 'dialling', addr, attempt })
    const started = Date.now()
    let ma: Multiaddr
    try {
      ma = multiaddr(addr)
    } catch {
      const error = 'not a multiaddr'
      onEvent({ type: 'failed', addr, error, retryInMs: -1 })
      return error
    }
    try {
      const connection = await libp2p.dial(ma, { signal: AbortSignal.any([AbortSignal.timeout(DIAL_TIMEOUT_MS), controller.signal]) })
      const peer = connection.remotePeer.toString()
      up.set(addr, peer)
      // Keep the seed: the connection manager re-dials KEEP_ALIVE peers when their connection drops.
      await libp2p.peerStore.merge(connection.remotePeer, { tags: { 'keep-alive-bootstrap': { value: 50 } } }).catch(() => {})
      onEvent({ type: 'connected', addr, peer, ms: Date.now() - started })
      return undefined
    } catch (err) {
      if (stopped) return undefined
      const error = explainDialError(err as Error)
      const retryInMs = retryDelay(attempt, random())
      onEvent({ type: 'failed', addr, error, retryInMs })
      later(retryInMs, () => { void dial(addr, attempt + 1) })
      return error
    }
  }

  const onClose = (e: CustomEvent<{ remotePeer: { toString: () => string } }>): void => {
    const peer = e.detail.remotePeer.toString()
    for (const [addr, p] of up) {
      if (p !== peer || libp2p.getConnections().some(c => c.remotePeer.toString() === peer)) continue
      up.delete(addr)
      if (stopped) return
      onEvent({ type: 'lost', addr, peer })
      later(retryDelay(0, random()), () => { void dial(addr, 1) })
    }
  }
  libp2p.addEventListener('connection:close', onClose as never)

  // A public node may share one network file with the other seeds: its own entry is not a peer to dial.
  const self = `/p2p/${libp2p.peerId.toString()}`
  const others = addrs.filter(a => !a.endsWith(self))
  const firstRound = Promise.all(others.map(async addr => {
    const error = await dial(addr, 0)
    return error === undefined ? { addr } : { addr, error }
  }))
  return {
    firstRound,
    connected: () => [...up.keys()],
    stop () {
      stopped = true
      controller.abort()
      libp2p.removeEventListener('connection:close', onClose as never)
      for (const t of timers) clearTimeout(t)
      timers.clear()
    }
  }
}
