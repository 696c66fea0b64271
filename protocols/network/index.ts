/**
 * Which network a peer belongs to and how it enters it: names in every protocol id, the network
 * file, the dial retry schedule and the reachability verdict. Pure: no I/O, no clocks.
 *
 * @example
 * ```ts
 * const ids = networkIds('testnet')            // ids.rpcProtocol === '/agentmesh/testnet/rpc/1.0.0'
 * const spec = parseNetworkSpec(YAML.parse(text), 'testnet.yaml')
 * checkPeerNetwork('testnet', remoteProtocols) // { ok: false, reason } for a peer of another network
 * ```
 */
export { checkPeerNetwork, LOCAL_NETWORK, NETWORK_NAME, networkIds, networksSpoken, type NetworkIds } from './ids.ts'
export { isBootstrapAddr, NetworkFileError, parseNetworkSpec, pnetKeyFile, type NetworkSpec } from './file.ts'
export { DIAL_BACKOFF, retryDelay, type Backoff } from './backoff.ts'
export { describeReachability, reachability, type Reachability, type ReachabilityFacts } from './reachability.ts'
export { inRange, parseCidr, parseIp, type IpRange } from './ranges.ts'
