/**
 * Host identity without libp2p: a host is an Ed25519 key, named by its libp2p peer id string.
 *
 * An Ed25519 peer id is the identity multihash of the protobuf-encoded public key, so the key can
 * be read back out of the id. A VCV therefore needs no separate key field: the agent id names its
 * host, and the host's key checks the signature.
 */
import { toString, fromString } from 'uint8arrays'
import { sha256 } from './hash.ts'

// identity multihash (0x00), length 36, protobuf PublicKey { Type: Ed25519 (1), Data: 32 bytes }
const PREFIX = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20)

export function peerIdFromEd25519 (publicKey: Uint8Array): string {
  if (publicKey.byteLength !== 32) throw new Error('an Ed25519 public key is 32 bytes')
  const bytes = new Uint8Array(PREFIX.byteLength + 32)
  bytes.set(PREFIX, 0)
  bytes.set(publicKey, PREFIX.byteLength)
  return toString(bytes, 'base58btc')
}

const known = new Map<string, Uint8Array | undefined>()

/**
 * The Ed25519 public key inside a peer id, or undefined for any other kind of id. Memoised
 * (bounded): every record names its host, and base58 decoding costs more than the lookup.
 */
export function ed25519FromPeerId (peerId: string): Uint8Array | undefined {
  return memoised(peerId)?.slice() // a copy: callers must not be able to change the memo
}

/** Whether a peer id holds an Ed25519 key: `ed25519FromPeerId` without the copy, for validators. */
export function isEd25519PeerId (peerId: string): boolean {
  return memoised(peerId) !== undefined
}

function memoised (peerId: string): Uint8Array | undefined {
  let key = known.get(peerId)
  if (key === undefined && !known.has(peerId)) {
    key = parseEd25519PeerId(peerId)
    if (known.size >= 50_000) known.clear()
    known.set(peerId, key)
  }
  return key
}

function parseEd25519PeerId (peerId: string): Uint8Array | undefined {
  if (!peerId.startsWith('12D3KooW') || peerId.length > 64) return undefined
  let bytes: Uint8Array
  try {
    bytes = fromString(peerId, 'base58btc')
  } catch {
    return undefined
  }
  if (bytes.byteLength !== PREFIX.byteLength + 32) return undefined
  for (let i = 0; i < PREFIX.byteLength; i++) if (bytes[i] !== PREFIX[i]) return undefined
  return bytes.slice(PREFIX.byteLength)
}

/** Signing and verification are inputs: the node gives real Ed25519, the simulator may give a cheaper stand-in. */
export interface Signer {
  /** This host's peer id. */
  readonly peerId: string
  sign (message: Uint8Array): Uint8Array
}

export interface Verifier {
  /** True when `signature` is `peerId`'s signature over `message`. Never throws. */
  verify (peerId: string, message: Uint8Array, signature: Uint8Array): boolean
}

// ---- proof of work on peer ids ---------------------------------------------------------------

/** The most work a network may ask of an identity: 24 bits is ~16M key pairs (~12 min on one core). */
export const MAX_ID_WORK_BITS = 24

/**
 * The work in an identity: leading zero bits of SHA-256(SHA-256(Ed25519 public key)), S/Kademlia's
 * static crypto puzzle (Baumgart and Mies, "S/Kademlia: A practicable approach towards secure
 * key-based routing", 2007, §4.1: NodeId = H(pub), c1 leading zero bits of H(NodeId)). Finding an
 * identity with `b` bits takes 2^b key pairs on average; checking it takes two hashes and needs only
 * the peer id, so a table, a vote count or a connection gater can refuse a cheap identity. 0 for an
 * id that is not an Ed25519 peer id.
 */
export function idWorkBits (peerId: string): number {
  const key = ed25519FromPeerId(peerId)
  return key === undefined ? 0 : workOfKey(key)
}

/** The same for a raw 32-byte Ed25519 public key. */
export function workOfKey (publicKey: Uint8Array): number {
  return leadingZeroBits(sha256(sha256(publicKey)))
}

export function leadingZeroBits (bytes: Uint8Array): number {
  let bits = 0
  for (const byte of bytes) {
    if (byte === 0) { bits += 8; continue }
    return bits + Math.clz32(byte) - 24
  }
  return bits
}
