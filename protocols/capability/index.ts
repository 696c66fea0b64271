/**
 * Versioned Capability Vectors: the signed, versioned description of one agent, and the table of
 * every VCV a peer has verified.
 *
 * @example
 * ```ts
 * const table = new CapabilityTable({ signer, verifier, random: rng })
 * const effects = table.advertise({ name: 'calc', description: 'evaluates arithmetic', ... }, now)
 * // the driver carries out effects: broadcast → gossip publish, send → stream write, timer → tick(at)
 * const { verdict } = table.receiveGossip(bytes, fromPeer, now)   // 'accept' | 'ignore' | 'reject'
 * table.agents()   // every verified, unexpired VCV, own agents included
 * ```
 */
export { CapabilityTable, DEFAULT_MAX_AGENTS_PER_HOST, OVER_ADMISSION, OVER_QUOTA } from './table.ts'
export { DEFAULT_ADMISSION, NewHostAdmission } from './admission.ts'
export type { AdmissionBudgets, Budget } from './admission.ts'
export type { CapabilityTableInit, LocalAgent, Outcome, RemovalReason, TableEvent, Verdict } from './table.ts'
export { decodeRecord, signTombstone, signVcv, verifyRecord, schemaHash } from './wire.ts'
export type { SignedRecord, SignedTombstone, SignedVcv } from './wire.ts'
export { limits, splitAgentId, validateTombstoneBody, validateVcvBody, ValidationError, WIRE_VERSION } from './schema.ts'
export type { Embedding, TombstoneBody, VcvBody } from './schema.ts'
export { decodeDirect, encodeDirect, directLimits } from './direct.ts'
export { bundleLimits, gossipRecords, packBundles } from './bundle.ts'
export type { DirectMessage } from './direct.ts'

import { LOCAL_NETWORK, networkIds } from '../network/ids.ts'

/** Gossip topic carrying signed VCVs and tombstones (of the local network; see protocols/network). */
export const CAPABILITY_TOPIC = networkIds(LOCAL_NETWORK).capabilityTopic
/** Stream protocol for anti-entropy digests and batches. */
export const CAPABILITY_PROTOCOL = networkIds(LOCAL_NETWORK).capabilityProtocol
