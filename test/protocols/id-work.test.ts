import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { ed25519Signer } from '../../node/network/crypto.ts'
import { NetworkGuard } from '../../node/network/guard.ts'
import { IdentityWorkError, loadOrCreateIdentity, mintKey } from '../../node/storage/identity.ts'
import { idWorkBits, leadingZeroBits, peerIdFromEd25519, workOfKey } from '../../protocols/identity.ts'
import { parseNetworkSpec } from '../../protocols/network/index.ts'
import { signVcv, WIRE_VERSION, schemaHash } from '../../protocols/capability/index.ts'
import { table } from '../helpers/hosts.ts'

const T0 = 1_700_000_000_000

describe('proof of work on peer ids (S/Kademlia static puzzle)', () => {
  it('counts leading zero bits bit by bit', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 8 }), bytes => {
      const bits = [...bytes].map(b => b.toString(2).padStart(8, '0')).join('')
      const expected = bits.indexOf('1') === -1 ? bits.length : bits.indexOf('1')
      expect(leadingZeroBits(bytes)).toBe(expected)
    }), { seed: 3, numRuns: 300 })
  })

  it('mints keys with the work asked for; the work is read back from the peer id alone', async () => {
    for (const bits of [1, 4, 8]) {
      const key = await mintKey(bits)
      const id = peerIdFromEd25519(key.publicKey.raw)
      expect(idWorkBits(id)).toBeGreaterThanOrEqual(bits)
      expect(workOfKey(key.publicKey.raw)).toBe(idWorkBits(id))
      // The minted key signs like any other: its signer names the same peer id.
      expect(ed25519Signer(key).peerId).toBe(id)
    }
    expect(idWorkBits('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N')).toBe(0)
  })

  it('a table with minIdWorkBits rejects records of a cheaper host before checking signatures', async () => {
    const strong = ed25519Signer(await mintKey(8))
    let weakKey = await generateKeyPair('Ed25519')
    while (workOfKey(weakKey.publicKey.raw) >= 8) weakKey = await generateKeyPair('Ed25519')
    const weak = ed25519Signer(weakKey)
    const receiver = table(ed25519Signer(await mintKey(8)), { minIdWorkBits: 8 })
    const vcv = (host: typeof strong) => {
      const s = '{"type":"object"}'
      return signVcv({
        v: WIRE_VERSION, agent: `${host.peerId}/calc`, version: 1, description: 'adds numbers', skills: ['math'],
        inputSchema: s, outputSchema: s, schemaHash: schemaHash(s, s), embedding: null,
        cost: 1, latencyMs: 5, capacity: 1, policy: [], issuedAt: T0, expiresAt: T0 + 60_000
      }, host).wire
    }
    expect(receiver.receiveGossip(vcv(strong), 'p', T0).verdict).toBe('accept')
    const outcome = receiver.receiveGossip(vcv(weak), 'p', T0)
    expect(outcome).toMatchObject({ verdict: 'reject', reason: "host id has less than the network's 8 bits of work" })
    expect(receiver.size).toBe(1)
  })

  it('the gater refuses peer ids without the work, both ways, with the reason', async () => {
    const guard = new NetworkGuard('net', { minIdWorkBits: 8 })
    const gater = guard.gater()
    const strong = peerIdFromString(peerIdFromEd25519((await mintKey(8)).publicKey.raw))
    let weakKey = await generateKeyPair('Ed25519')
    while (workOfKey(weakKey.publicKey.raw) >= 8) weakKey = await generateKeyPair('Ed25519')
    const weak = peerIdFromString(peerIdFromEd25519(weakKey.publicKey.raw))
    expect(await gater.denyDialPeer!(strong)).toBe(false)
    expect(await gater.denyDialPeer!(weak)).toBe(true)
    expect(await gater.denyInboundEncryptedConnection!(weak, undefined as never)).toBe(true)
    expect(guard.refusal(weak.toString())?.reason).toMatch(/less than the network's 8 bits of proof of work/)
    expect(await new NetworkGuard('net').gater().denyDialPeer!(weak)).toBe(false)
    // A missing proof of work is not a ban (nothing is stored); a refusal for misbehaviour is.
    expect(guard.banned(weak.toString())).toBe(false)
    guard.refuse(strong.toString(), 'flooding', 60_000)
    expect(guard.banned(strong.toString())).toBe(true)
    expect(await gater.denyDialPeer!(strong)).toBe(true)
  })

  it('a new identity is made with the network\'s work; an old one without it is refused with what to do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentmesh-idwork-'))
    try {
      const made = await loadOrCreateIdentity(join(dir, 'a'), { workBits: 6 })
      expect(made.created).toBe(true)
      expect(workOfKey(made.key.publicKey.raw)).toBeGreaterThanOrEqual(6)
      const again = await loadOrCreateIdentity(join(dir, 'a'), { workBits: 6 })
      expect(again.created).toBe(false)
      expect(again.key.publicKey.raw).toEqual(made.key.publicKey.raw)

      let old = await generateKeyPair('Ed25519')
      while (workOfKey(old.publicKey.raw) >= 6) old = await generateKeyPair('Ed25519')
      writeFileSync(join(dir, 'identity.key'), privateKeyToProtobuf(old))
      await expect(loadOrCreateIdentity(dir, { workBits: 6 })).rejects.toThrow(IdentityWorkError)
      await expect(loadOrCreateIdentity(dir, { workBits: 6 })).rejects.toThrow(/asks for 6 — move the file away/)
      expect((await loadOrCreateIdentity(dir)).created).toBe(false)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('the network file sets idWorkBits from 0 to 24', () => {
    expect(parseNetworkSpec({ name: 'net', idWorkBits: 16 }, 'f.yaml').idWorkBits).toBe(16)
    expect(parseNetworkSpec({ name: 'net', idWorkBits: 0 }, 'f.yaml').idWorkBits).toBeUndefined()
    for (const bad of [-1, 25, 1.5, '16']) {
      expect(() => parseNetworkSpec({ name: 'net', idWorkBits: bad }, 'f.yaml')).toThrow(/"idWorkBits" must be a whole number from 0 to 24/)
    }
  })
})
