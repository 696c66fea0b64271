/**
 * Requests about agents between peers: beacons (live state) and executions.
 *
 * @example
 * ```ts
 * const bytes = encodeRpc({ t: 'execute', id: 7, agent: 'calc', input: { expression: '1+1' }, deadlineMs: 5000 })
 * const message = decodeRpc(bytes)   // validated; throws RpcError with the reason
 * ```
 */
export { decodeRpc, encodeRpc, rpcLimits, RpcError, wireDeadline } from './wire.ts'
export type { FailureKind, LiveState, RpcMessage, SignRequest } from './wire.ts'

import { LOCAL_NETWORK, networkIds } from '../network/ids.ts'

/** Stream protocol carrying RpcMessages (of the local network; see protocols/network). */
export const RPC_PROTOCOL = networkIds(LOCAL_NETWORK).rpcProtocol
