/**
 * The one place that imports gossipsub. `@libp2p/gossipsub` is the ChainSafe implementation moved
 * into the js-libp2p monorepo; `@chainsafe/libp2p-gossipsub` 14 forms no mesh on libp2p 3. When it
 * supports libp2p 3 again, switching back is this import.
 */
import { gossipsub, StrictNoSign, TopicValidatorResult, type GossipSub, type GossipsubOpts, type SubscriptionChangeData } from '@libp2p/gossipsub'
import type { MetricsRegister } from '@libp2p/gossipsub/metrics'
import { createTopicScoreParams, type PeerScoreParams, type TopicScoreParams } from '@libp2p/gossipsub/score'
import { createHash } from 'node:crypto'

export { TopicValidatorResult, type GossipSub, type SubscriptionChangeData }

/** Gossipsub's own metrics: where they are registered, and each topic's label. */
export interface GossipMetrics { register: MetricsRegister, topicLabels: Map<string, string> }

/** A peer's gossip score (the class has it; the service interface does not); undefined if unknown. */
export function gossipScore (pubsub: unknown, peer: string): number | undefined {
  const p = pubsub as { getScore?: (peer: string) => number }
  if (typeof p.getScore !== 'function') return undefined
  const score = p.getScore(peer)
  return Number.isFinite(score) ? score : undefined
}

/** A protocol machine's verdict on a gossip message, in gossipsub's terms. */
export const VALIDATOR_RESULT: Record<'accept' | 'ignore' | 'reject', TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  ignore: TopicValidatorResult.Ignore,
  reject: TopicValidatorResult.Reject
}

/**
 * - `agentmesh`: records carry their own host signature, so gossip messages go unsigned
 *   (StrictNoSign) and are identified by a hash of their content. Duplicates are then dropped by the
 *   fast id before any parsing or signature check, and a record republished by anyone keeps its id.
 *   Records published in one turn travel as one bundle (the capability service).
 * - `default`: gossipsub as it comes: each record its own message, signed and verified again by
 *   the gossip layer; kept for comparison in `npm run bench -- gossip`.
 */
export type GossipProfile = 'agentmesh' | 'default'

export interface GossipSettings {
  profile?: GossipProfile
  /** Every peer is on 127.0.0.1: exempt it from the IP colocation penalty, or meshes > 10 peers empty. */
  loopback?: boolean
  /** Also run over relayed (limited) connections: a peer behind NAT may have no other path yet. */
  overRelays?: boolean
  /**
   * The network's topics: the only ones this peer keeps state for, each scored so that a message
   * its validator rejects costs the sender (none: gossipsub's unscored defaults, for the bench).
   */
  topics?: string[]
  /** What the application knows of a peer (a proven equivocator: very negative); read at each heartbeat. */
  appScore?: (peer: string) => number
  metrics?: GossipMetrics
}

/**
 * Score thresholds, after Lodestar's production ladder (gossip < publish < graylist, each twice the
 * last; https://github.com/ChainSafe/lodestar, packages/beacon-node/src/network/gossip/scoringParameters.ts)
 * scaled to our weights: below `graylist` a peer's RPCs are ignored, and agentmesh also hangs up on it
 * and refuses it for a while (node/network/score-guard.ts).
 */
export const SCORE_THRESHOLDS = {
  gossipThreshold: -500,
  publishThreshold: -1000,
  graylistThreshold: -2000,
  acceptPXThreshold: 100,
  opportunisticGraftThreshold: 5
} as const

/** The score of a proven equivocator: past the graylist at once, whatever else it did. */
export const EQUIVOCATOR_SCORE = -10 * Math.abs(SCORE_THRESHOLDS.graylistThreshold)

/**
 * Per-topic parameters. Invalid deliveries (P4) count squared with weight -100 and decay by 0.9 a
 * second: 5 rejected messages in a few seconds graylist a peer, an honest peer's rare mistake
 * fades within a minute. Mesh-delivery deficits (P3) stay off: our topics are quiet by design
 * (adverts every ttl/3, certificates per trusted task), and P3 would punish honest silence.
 */
function topicScore (): TopicScoreParams {
  return createTopicScoreParams({
    topicWeight: 1,
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 3600,
    firstMessageDeliveriesWeight: 1,
    firstMessageDeliveriesDecay: 0.9,
    firstMessageDeliveriesCap: 20,
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    invalidMessageDeliveriesWeight: -100,
    invalidMessageDeliveriesDecay: 0.9
  })
}

const contentId = (data: Uint8Array | undefined): Buffer => createHash('sha256').update(data ?? new Uint8Array()).digest()

export function gossip (settings: GossipSettings = {}): ReturnType<typeof gossipsub> {
  const scoreParams: Partial<PeerScoreParams> = settings.loopback === true ? { IPColocationFactorWhitelist: new Set(['127.0.0.1']) } : {}
  if (settings.topics !== undefined) {
    Object.assign(scoreParams, {
      topics: Object.fromEntries(settings.topics.map(t => [t, topicScore()])),
      topicScoreCap: 50,
      appSpecificScore: (peer: string) => settings.appScore?.(peer) ?? 0,
      appSpecificWeight: 1,
      behaviourPenaltyWeight: -10,
      behaviourPenaltyDecay: 0.9
    } satisfies Partial<PeerScoreParams>)
  }
  const options: Partial<GossipsubOpts> = {
    allowPublishToZeroTopicPeers: true,
    ignoreDuplicatePublishError: true,
    scoreParams,
    ...(settings.topics !== undefined ? { scoreThresholds: { ...SCORE_THRESHOLDS }, allowedTopics: new Set(settings.topics) } : {}),
    runOnLimitedConnection: settings.overRelays === true,
    ...(settings.metrics !== undefined ? { metricsRegister: settings.metrics.register, metricsTopicStrToLabel: settings.metrics.topicLabels } : {})
  }
  if ((settings.profile ?? 'agentmesh') === 'agentmesh') {
    Object.assign(options, {
      globalSignaturePolicy: StrictNoSign,
      msgIdFn: (msg) => contentId(msg.data).subarray(0, 20),
      fastMsgIdFn: (rpc) => contentId(rpc.data).toString('base64'),
      msgIdToStrFn: (id) => Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('base64')
    } satisfies Partial<GossipsubOpts>)
  }
  return gossipsub(options)
}
