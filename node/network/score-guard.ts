/**
 * Gossipsub only stops listening to a peer below the graylist threshold; the connection stays and
 * the peer keeps costing us decoding. At every heartbeat this hangs up on any connected peer whose
 * score is below the graylist and refuses it (both ways) for a while, with the reason shown.
 */
import type { Libp2p } from '@libp2p/interface'
import type { NetworkGuard } from './guard.ts'
import { gossipScore, SCORE_THRESHOLDS, type GossipSub } from './gossip.ts'

/** How long a graylisted peer is refused: long enough to end an attack, short enough to forgive a bug. */
export const SCORE_BAN_MS = 10 * 60_000

export function banLowScorers (libp2p: Libp2p<{ pubsub: GossipSub }>, guard: NetworkGuard, banMs = SCORE_BAN_MS): () => void {
  const pubsub = libp2p.services.pubsub
  const onHeartbeat = (): void => {
    for (const id of pubsub.getPeers()) {
      const peer = id.toString()
      const score = gossipScore(pubsub, peer)
      if (score === undefined || score >= SCORE_THRESHOLDS.graylistThreshold || guard.refusal(peer) !== undefined) continue
      guard.refuse(peer, `gossip score ${Math.round(score)} is below the graylist threshold ${SCORE_THRESHOLDS.graylistThreshold} (invalid messages or proven equivocation)`, banMs)
      void libp2p.hangUp(id).catch(() => {})
    }
  }
  pubsub.addEventListener('gossipsub:heartbeat', onHeartbeat)
  return () => { pubsub.removeEventListener('gossipsub:heartbeat', onHeartbeat) }
}
