/**
 * The one place that imports gossipsub. `@libp2p/gossipsub` is the ChainSafe implementation moved
 * into the js-libp2p monorepo; `@chainsafe/libp2p-gossipsub` 14 forms no mesh on libp2p 3. When it
 * supports libp2p 3 again, switching back is this import.
 */
import { gossipsub, StrictNoSign, TopicValidatorResult, type GossipSub, type GossipsubOpts, type SubscriptionChangeData } from '@libp2p/gossipsub'
import { createHash } from 'node:crypto'

export { TopicValidatorResult, type GossipSub, type SubscriptionChangeData }

/**
 * - `agentmesh`: records carry their own host signature, so gossip messages go unsigned
 *   (StrictNoSign) and are identified by a hash of their content. Duplicates are then dropped by the
 *   fast id before any parsing or signature check, and a record republished by anyone keeps its id.
 * - `default`: gossipsub's defaults (each message signed and verified again by the gossip layer);
 *   kept for comparison in `npm run bench -- gossip`.
 */
export type GossipProfile = 'agentmesh' | 'default'

export interface GossipSettings {
  profile?: GossipProfile
  /** Every peer is on 127.0.0.1: exempt it from the IP colocation penalty, or meshes > 10 peers empty. */
  loopback?: boolean
  /** Also run over relayed (limited) connections: a peer behind NAT may have no other path yet. */
  overRelays?: boolean
}

const contentId = (data: Uint8Array | undefined): Buffer => createHash('sha256').update(data ?? new Uint8Array()).digest()

export function gossip (settings: GossipSettings = {}): ReturnType<typeof gossipsub> {
  const options: Partial<GossipsubOpts> = {
    allowPublishToZeroTopicPeers: true,
    ignoreDuplicatePublishError: true,
    scoreParams: settings.loopback === true ? { IPColocationFactorWhitelist: new Set(['127.0.0.1']) } : {},
    runOnLimitedConnection: settings.overRelays === true
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
