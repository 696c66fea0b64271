/**
 * Keeps other networks out: a peer whose identify lists only another network's protocols is
 * disconnected with a reason, and refused (both ways) for a while after. Other guards (a gossip
 * score below the graylist, a peer over its limits) refuse peers through the same list. In a
 * network with `idWorkBits`, a peer id without that much proof of work is refused both ways.
 */
import type { ConnectionGater, Libp2p, PeerId } from '@libp2p/interface'
import { idWorkBits } from '../../protocols/identity.ts'
import { checkPeerNetwork } from '../../protocols/network/index.ts'

const REFUSE_MS = 10 * 60_000
const MAX_REFUSED = 10_000

export interface Refusal { peer: string, reason: string, at: number, until: number }

export class NetworkGuard {
  readonly #network: string
  readonly #minIdWorkBits: number
  readonly #refused = new Map<string, Refusal>()
  onRefused: ((r: Refusal) => void) | undefined

  constructor (network: string, options: { minIdWorkBits?: number } = {}) {
    this.#network = network
    this.#minIdWorkBits = options.minIdWorkBits ?? 0
  }

  gater (): ConnectionGater {
    const denied = (peer: PeerId): boolean => this.refusal(peer.toString()) !== undefined
    return { denyDialPeer: denied, denyInboundEncryptedConnection: denied }
  }

  refusal (peer: string): Refusal | undefined {
    if (this.#minIdWorkBits > 0 && idWorkBits(peer) < this.#minIdWorkBits) {
      return { peer, reason: `its peer id has less than the network's ${this.#minIdWorkBits} bits of proof of work`, at: 0, until: Infinity }
    }
    return this.#ban(peer)
  }

  /** Refuses `peer` for `forMs` (the caller hangs up on it); the newest reason wins. */
  refuse (peer: string, reason: string, forMs = REFUSE_MS): Refusal {
    this.#refused.delete(peer)
    if (this.#refused.size >= MAX_REFUSED) this.#refused.delete(this.#refused.keys().next().value!)
    const at = Date.now()
    const refusal = { peer, reason, at, until: at + forMs }
    this.#refused.set(peer, refusal)
    this.onRefused?.(refusal)
    return refusal
  }

  refusals (): Refusal[] { return [...this.#refused.values()] }

  /** Whether `peer` is refused for what it did (not for its id's work): cheap enough for a search filter. */
  banned (peer: string): boolean { return this.#ban(peer) !== undefined }

  /** The live refusal `refuse` stored for `peer`; an expired one is dropped on the way. */
  #ban (peer: string): Refusal | undefined {
    const r = this.#refused.get(peer)
    if (r !== undefined && Date.now() >= r.until) { this.#refused.delete(peer); return undefined }
    return r
  }

  /** Watches identify results of `libp2p` from now on. */
  watch (libp2p: Libp2p): void {
    libp2p.addEventListener('peer:identify', e => {
      const verdict = checkPeerNetwork(this.#network, e.detail.protocols)
      if (verdict.ok) return
      this.refuse(e.detail.peerId.toString(), verdict.reason)
      void libp2p.hangUp(e.detail.peerId).catch(() => {})
    })
  }
}
