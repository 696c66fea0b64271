/**
 * Network names. Every protocol id and gossip topic carries the network's name, so peers of two
 * networks never exchange a record, a request or a DHT entry, even when they connect.
 */

/** Lower-case letters, digits and dashes, 1–32 characters: it goes into protocol ids and file names. */
export const NETWORK_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/

/** The network `agentmesh up` and a bare `agentmesh node` join: peers on one machine. */
export const LOCAL_NETWORK = 'local'

export interface NetworkIds {
  name: string
  capabilityTopic: string
  capabilityProtocol: string
  certificateTopic: string
  rpcProtocol: string
  kadProtocol: string
}

export function networkIds (name: string): NetworkIds {
  if (!NETWORK_NAME.test(name)) throw new Error(`"${name}" is not a network name: use 1–32 lower-case letters, digits and dashes`)
  return {
    name,
    // 2: messages may be bundles of records (protocols/capability/bundle.ts), which a version-1 peer would reject.
    capabilityTopic: `agentmesh/${name}/capability/2`,
    capabilityProtocol: `/agentmesh/${name}/capability/1.0.0`,
    certificateTopic: `agentmesh/${name}/certificates/1`,
    rpcProtocol: `/agentmesh/${name}/rpc/1.0.0`,
    kadProtocol: `/agentmesh/${name}/kad/1.0.0`
  }
}

/** The agentmesh networks a peer speaks, read from the protocols it lists in identify. */
export function networksSpoken (protocols: readonly string[]): string[] {
  const names = new Set<string>()
  for (const p of protocols) {
    const m = /^\/agentmesh\/([a-z0-9][a-z0-9-]{0,31})\/rpc\//.exec(p)
    if (m !== null) names.add(m[1]!)
  }
  return [...names].sort()
}

/**
 * Whether a connected peer belongs to our network. A peer that speaks no agentmesh protocol at
 * all (a plain relay, a DHT-only node) is let be; one that speaks only other networks is refused.
 */
export function checkPeerNetwork (ours: string, protocols: readonly string[]): { ok: true } | { ok: false, reason: string } {
  const spoken = networksSpoken(protocols)
  if (spoken.length === 0 || spoken.includes(ours)) return { ok: true }
  return { ok: false, reason: `it is a peer of network ${spoken.map(s => `"${s}"`).join(', ')}, not "${ours}" — join with --network ${spoken[0]} to reach it` }
}
