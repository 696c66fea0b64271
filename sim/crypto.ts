/**
 * Host identities for simulated nodes, derived from the run's seed so a run is reproducible.
 *
 * `ed25519`: real keys (node:crypto), real signatures, checked by the node's own verifier.
 * `fast`: a stand-in for runs at scale — the signature is a keyed SHA-256 under a per-host secret
 * that only the simulator's registry holds (64 bytes like Ed25519, so messages keep their size).
 * It has the property the protocols rely on: nobody signs as a host without that host's secret,
 * and changing a signed byte breaks the check. Peer ids keep the real format.
 */
import { createHash, createPrivateKey, createPublicKey, sign, timingSafeEqual } from 'node:crypto'
import { fromString } from 'uint8arrays'
import { peerIdFromEd25519, type Signer, type Verifier } from '../protocols/identity.ts'
import { ed25519Verifier } from '../node/network/crypto.ts'
import type { Rng } from './rng.ts'

function bytes (rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = Math.floor(rng() * 256)
  return out
}

export interface Identities {
  signers: Signer[]
  verifier: Verifier
  /** Node index of a peer id. */
  indexOf: Map<string, number>
}

const PKCS8_ED25519 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20])

export function makeIdentities (count: number, kind: 'fast' | 'ed25519', rng: Rng): Identities {
  const signers: Signer[] = []
  const indexOf = new Map<string, number>()
  if (kind === 'ed25519') {
    for (let i = 0; i < count; i++) {
      const der = new Uint8Array(PKCS8_ED25519.length + 32)
      der.set(PKCS8_ED25519)
      der.set(bytes(rng, 32), PKCS8_ED25519.length)
      const key = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' })
      const x = createPublicKey(key).export({ format: 'jwk' }).x!
      const peerId = peerIdFromEd25519(fromString(x, 'base64url'))
      signers.push({ peerId, sign: message => new Uint8Array(sign(null, message, key)) })
      indexOf.set(peerId, i)
    }
    return { signers, verifier: ed25519Verifier(count + 16), indexOf }
  }
  const secrets = new Map<string, Uint8Array>()
  // SHA-256 over secret ‖ message ‖ secret: keyed, and cheaper than createHmac's per-call key set-up.
  const mac = (secret: Uint8Array, message: Uint8Array): Uint8Array => {
    const h = createHash('sha256').update(secret).update(message).update(secret).digest()
    const sig = new Uint8Array(64)
    sig.set(h)
    sig.set(h, 32)
    return sig
  }
  for (let i = 0; i < count; i++) {
    const peerId = peerIdFromEd25519(bytes(rng, 32))
    const secret = bytes(rng, 32)
    secrets.set(peerId, secret)
    signers.push({ peerId, sign: message => mac(secret, message) })
    indexOf.set(peerId, i)
  }
  const verifier: Verifier = {
    verify (peerId, message, signature) {
      const secret = secrets.get(peerId)
      if (secret === undefined || signature.byteLength !== 64) return false
      return timingSafeEqual(mac(secret, message), signature)
    }
  }
  return { signers, verifier, indexOf }
}
