// What peers sharing a process share (agentmesh up --per-process): signature checks and embeddings.
import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { ed25519Signer, ed25519Verifier, rememberingVerifier } from '../../node/network/crypto.ts'
import { HashEmbedder } from '../../capability-index/index.ts'
import type { Verifier } from '../../protocols/identity.ts'

describe('a remembering verifier', () => {
  it('checks each signed message once, and never accepts what the real check would refuse', async () => {
    const [alice, mallory] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')])
    const signer = ed25519Signer(alice)
    const other = ed25519Signer(mallory)
    const real = ed25519Verifier()
    let checks = 0
    const counted: Verifier = { verify: (...args) => { checks++; return real.verify(...args) } }
    const verifier = rememberingVerifier(counted, 4)
    const message = new TextEncoder().encode('record v1')
    const sig = signer.sign(message)
    expect(verifier.verify(signer.peerId, message, sig)).toBe(true)
    expect(verifier.verify(signer.peerId, message.slice(), sig)).toBe(true)
    expect(checks).toBe(1)
    // A remembered signature over other bytes, or claimed for another signer, is checked and refused.
    const altered = message.slice()
    altered[0] = altered[0]! ^ 1
    expect(verifier.verify(signer.peerId, altered, sig)).toBe(false)
    expect(verifier.verify(other.peerId, message, sig)).toBe(false)
    expect(checks).toBe(3)
    // A failure is never remembered.
    expect(verifier.verify(signer.peerId, altered, sig)).toBe(false)
    expect(checks).toBe(4)
    // The caller's buffer may change afterwards: what was remembered is a copy.
    const buffer = new TextEncoder().encode('record v2')
    const sig2 = signer.sign(buffer)
    expect(verifier.verify(signer.peerId, buffer, sig2)).toBe(true)
    buffer[0] = buffer[0]! ^ 1
    expect(verifier.verify(signer.peerId, buffer, sig2)).toBe(false)
    // Bounded: the oldest go first.
    for (let i = 0; i < 4; i++) {
      const m = new TextEncoder().encode(`filler ${i}`)
      expect(verifier.verify(signer.peerId, m, signer.sign(m))).toBe(true)
    }
    const before = checks
    expect(verifier.verify(signer.peerId, message, sig)).toBe(true)
    expect(checks).toBe(before + 1)
  })
})

describe('a hash embedder with a cache', () => {
  it('gives the same vectors as without one, each call its own copy', async () => {
    const plain = new HashEmbedder()
    const cached = new HashEmbedder({ cache: 2 })
    const texts = ['evaluates arithmetic expressions', 'converts units', 'evaluates arithmetic expressions', 'sorts lists', 'converts units']
    const [a, b] = [await plain.embed(texts), await cached.embed(texts)]
    expect(b).toEqual(a)
    expect(b[0]).not.toBe(b[2])
    b[0]![0] = 42
    expect(cached.embedSync(texts[0]!)).toEqual(a[0])
    expect(cached.model).toBe(plain.model)
  })
})
