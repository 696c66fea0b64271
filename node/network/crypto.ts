/**
 * Ed25519 signing and verification for protocols/, on node:crypto (10k verifies/s per core, versus
 * ~1k for pure JS). Key objects are built once per host and cached: building one costs more than
 * the verification itself.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import type { PrivateKey } from '@libp2p/interface'
import { toString } from 'uint8arrays'
import { bytesEqual } from '../../protocols/cbor.ts'
import { ed25519FromPeerId, peerIdFromEd25519, type Signer, type Verifier } from '../../protocols/identity.ts'

const b64url = (bytes: Uint8Array): string => toString(bytes, 'base64url')

/** A signer over a libp2p Ed25519 private key (its `raw` is seed ‖ public key). */
export function ed25519Signer (privateKey: PrivateKey): Signer {
  if (privateKey.type !== 'Ed25519') throw new Error(`agentmesh identities are Ed25519 keys, not ${privateKey.type}`)
  const publicKey = privateKey.publicKey.raw
  const key = createPrivateKey({
    format: 'jwk',
    key: { kty: 'OKP', crv: 'Ed25519', d: b64url(privateKey.raw.subarray(0, 32)), x: b64url(publicKey) }
  })
  return {
    peerId: peerIdFromEd25519(publicKey),
    sign: (message) => new Uint8Array(sign(null, message, key))
  }
}

export function ed25519Verifier (maxCachedKeys = 20_000): Verifier {
  const keys = new Map<string, KeyObject | null>()
  const keyOf = (peerId: string): KeyObject | null => {
    let key = keys.get(peerId)
    if (key !== undefined) return key
    const raw = ed25519FromPeerId(peerId)
    try {
      key = raw === undefined ? null : createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: b64url(raw) } })
    } catch {
      key = null
    }
    if (keys.size >= maxCachedKeys) keys.clear()
    keys.set(peerId, key)
    return key
  }
  return {
    verify (peerId, message, signature) {
      const key = keyOf(peerId)
      if (key === null || signature.byteLength !== 64) return false
      try {
        return verify(null, message, key, signature)
      } catch {
        return false
      }
    }
  }
}

/**
 * `inner`, remembering the signatures it found valid (the newest `size`), so the same signed bytes
 * are checked once. Peers that share a process (`agentmesh up` with several per process) share one:
 * each record then costs its signature check once per process, not once per peer. Only successes
 * are kept, and a hit must match the signer and every byte of the message, so a forgery can
 * neither be remembered nor ride on a remembered signature.
 */
export function rememberingVerifier (inner: Verifier, size = 50_000): Verifier {
  const valid = new Map<string, { peerId: string, message: Uint8Array }>()
  return {
    verify (peerId, message, signature) {
      const key = b64url(signature)
      const hit = valid.get(key)
      if (hit !== undefined && hit.peerId === peerId && bytesEqual(hit.message, message)) return true
      if (!inner.verify(peerId, message, signature)) return false
      if (valid.size >= size) valid.delete(valid.keys().next().value!)
      valid.set(key, { peerId, message: message.slice() })
      return true
    }
  }
}
