import { describe, it, expect, beforeAll } from 'vitest'
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { encode } from 'cborg'
import { ed25519FromPeerId, peerIdFromEd25519, type Signer } from '../../protocols/identity.ts'
import { encodeCanonical } from '../../protocols/cbor.ts'
import {
  bundleLimits, CapabilityTable, decodeRecord, encodeDirect, gossipRecords, limits, packBundles, signTombstone, signVcv, verifyRecord, schemaHash, WIRE_VERSION,
  type SignedVcv, type VcvBody
} from '../../protocols/capability/index.ts'
import { broadcasts, events, localAgent, makeSigners, pump, table, verifier } from '../helpers/hosts.ts'

const T0 = 1_700_000_000_000
let hosts: Signer[]

beforeAll(async () => { hosts = await makeSigners(5) })

function body (signer: Signer, name: string, version: number, extra: Partial<VcvBody> = {}): VcvBody {
  const inputSchema = '{"type":"object"}'
  const outputSchema = '{"type":"object"}'
  return {
    v: WIRE_VERSION, agent: `${signer.peerId}/${name}`, version, description: `v${version}`, skills: ['demo'],
    inputSchema, outputSchema, schemaHash: schemaHash(inputSchema, outputSchema), embedding: null,
    cost: 1, latencyMs: 5, capacity: 1, policy: [], issuedAt: T0, expiresAt: T0 + 60_000, ...extra
  }
}

describe('identity', () => {
  it('derives the same peer id as libp2p and reads the key back out of it', async () => {
    for (let i = 0; i < 5; i++) {
      const key = await generateKeyPair('Ed25519')
      const id = peerIdFromEd25519(key.publicKey.raw)
      expect(id).toBe(peerIdFromPrivateKey(key).toString())
      expect(ed25519FromPeerId(id)).toEqual(key.publicKey.raw)
    }
    expect(ed25519FromPeerId('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N')).toBeUndefined()
    expect(ed25519FromPeerId('12D3KooWnotbase58!!')).toBeUndefined()
  })
})

describe('capability table', () => {
  it('versions only move forward, whatever order records arrive in', () => {
    const host = hosts[0]!
    const records = Array.from({ length: 10 }, (_, i) => signVcv(body(host, 'calc', i + 1), host))
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 30 }), (order) => {
      const receiver = table(hosts[1]!)
      let last = 0
      for (const i of order) {
        const outcome = receiver.receiveGossip(records[i]!.wire, host.peerId, T0)
        const version = receiver.get(`${host.peerId}/calc`)!.body.version
        expect(version).toBeGreaterThanOrEqual(last)
        expect(outcome.verdict).toBe(i + 1 > last ? 'accept' : 'ignore')
        // A superseded record is stale, not a duplicate: only the record held counts as seen.
        if (i + 1 < last) expect(outcome.reason).toBe('stale version')
        if (i + 1 === last) expect(outcome.reason).toBe('duplicate')
        last = version
      }
      expect(last).toBe(Math.max(...order) + 1)
    }), { seed: 42, numRuns: 200 })
  })

  it('never accepts a record with a tampered byte', () => {
    const host = hosts[0]!
    const good = signVcv(body(host, 'calc', 3, { embedding: { model: 'm', vector: new Uint8Array(16) } }), host)
    fc.assert(fc.property(fc.nat(good.wire.byteLength - 1), fc.integer({ min: 1, max: 255 }), (at, mask) => {
      const tampered = good.wire.slice()
      tampered[at] = tampered[at]! ^ mask
      const receiver = table(hosts[1]!)
      const outcome = receiver.receiveGossip(tampered, 'peer', T0)
      expect(outcome.verdict).not.toBe('accept')
      expect(receiver.size).toBe(0)
      expect(receiver.receiveGossip(good.wire, 'peer', T0).verdict).toBe('accept')
    }), { seed: 7, numRuns: 400 })
  })

  it('rejects a VCV signed by a host other than the one its agent id names', () => {
    const [owner, forger] = [hosts[0]!, hosts[1]!]
    const forged = signVcv(body(forger, 'calc', 1), forger)
    // Re-point the body at the owner's agent id while keeping the forger's signature.
    const outer = { t: 'vcv', body: encodeCanonical({ ...forged.body, agent: `${owner.peerId}/calc` }), sig: forged.sig }
    const outcome = table(hosts[2]!).receiveGossip(encodeCanonical(outer), 'peer', T0)
    expect(outcome).toMatchObject({ verdict: 'reject', reason: 'bad signature' })
  })

  it('rejects malformed records with a reason', () => {
    const host = hosts[0]!
    const receiver = table(hosts[1]!)
    const good = signVcv(body(host, 'calc', 1), host)
    const cases: Array<[Uint8Array, RegExp]> = [
      [new Uint8Array(bundleLimits.maxBytes + 1), /limit/],
      // One record over the record limit, though under the bundle limit.
      [encodeCanonical({ t: 'vcv', body: new Uint8Array(limits.maxMessageBytes), sig: good.sig }), /record is \d+ bytes, limit/],
      [encodeCanonical({ t: 'vcv', body: good.bodyBytes, sig: good.sig, extra: 1 }), /unknown field "extra"/],
      [encodeCanonical({ t: 'blob', body: good.bodyBytes, sig: good.sig }), /unknown record type/],
      [encodeCanonical({ t: 'vcv', body: encodeCanonical({ ...good.body, capacity: 0 }), sig: good.sig }), /capacity/],
      [encodeCanonical({ t: 'vcv', body: encodeCanonical({ ...good.body, schemaHash: new Uint8Array(32) }), sig: good.sig }), /schemaHash/],
      [encodeCanonical({ t: 'vcv', body: encodeCanonical({ ...good.body, agent: 'nobody/calc' }), sig: good.sig }), /Ed25519 peer id/],
      [encodeCanonical({ t: 'vcv', body: encodeCanonical({ ...good.body, expiresAt: T0 + limits.maxTtlMs + 1 }), sig: good.sig }), /lifetime/],
      // Same value, but keys in insertion order instead of canonical order: a second encoding of one VCV.
      [encode({ t: 'vcv', body: good.bodyBytes, sig: good.sig }, { mapSorter: () => 0 }), /canonical/],
      [Uint8Array.of(0xff, 0x00), /canonical CBOR/]
    ]
    for (const [bytes, reason] of cases) {
      const outcome = receiver.receiveGossip(bytes, 'peer-x', T0)
      expect(outcome.verdict).toBe('reject')
      expect(outcome.reason).toMatch(reason)
      expect(events(outcome.effects)).toEqual([{ type: 'rejected', from: 'peer-x', reason: outcome.reason }])
    }
    expect(receiver.size).toBe(0)
  })

  it('takes a bundle of records from several hosts as one gossip message: accept if any is new, ignore a repeat', () => {
    const records = hosts.slice(0, 3).flatMap(h => [signVcv(body(h, 'calc', 1), h), signVcv(body(h, 'echo', 1), h)])
    const [bundle] = packBundles(records.map(r => r.wire))
    const receiver = table(hosts[4]!)
    const first = receiver.receiveGossip(bundle!, 'peer', T0)
    expect(first.verdict).toBe('accept')
    expect(events(first.effects).filter(e => e.type === 'added')).toHaveLength(6)
    expect(receiver.size).toBe(6)
    expect(receiver.receiveGossip(bundle!, 'peer', T0)).toMatchObject({ verdict: 'ignore', reason: 'duplicate' })
    // One new record among known ones is enough to forward the bundle.
    const newer = signVcv(body(hosts[0]!, 'calc', 2), hosts[0]!)
    expect(receiver.receiveGossip(packBundles([records[1]!.wire, newer.wire])[0]!, 'peer', T0).verdict).toBe('accept')
    expect(receiver.get(`${hosts[0]!.peerId}/calc`)!.body.version).toBe(2)
  })

  it('rejects a bundle at its first invalid record: those before it count (each is signed), those after are not checked', () => {
    const [a, b, c] = [signVcv(body(hosts[0]!, 'calc', 1), hosts[0]!), signVcv(body(hosts[1]!, 'calc', 1), hosts[1]!), signVcv(body(hosts[2]!, 'calc', 1), hosts[2]!)]
    const forged = encodeCanonical({ t: 'vcv', body: b.bodyBytes, sig: a.sig })
    const receiver = table(hosts[4]!)
    const outcome = receiver.receiveGossip(encodeCanonical({ t: 'bundle', items: [a.wire, forged, c.wire] }), 'peer-x', T0)
    expect(outcome).toMatchObject({ verdict: 'reject', reason: 'bad signature' })
    expect(events(outcome.effects).filter(e => e.type === 'rejected')).toEqual([{ type: 'rejected', from: 'peer-x', reason: 'bad signature' }])
    expect(receiver.agents().map(v => v.body.agent)).toEqual([a.body.agent])
    // The valid records still get in on their own.
    expect(receiver.receiveGossip(packBundles([b.wire, c.wire])[0]!, 'peer', T0).verdict).toBe('accept')
    expect(receiver.size).toBe(3)
  })

  it('rejects malformed bundles with a reason', () => {
    const good = signVcv(body(hosts[0]!, 'calc', 1), hosts[0]!)
    const cases: Array<[Uint8Array, RegExp]> = [
      [encodeCanonical({ t: 'bundle', items: [] }), /1-64 records/],
      [encodeCanonical({ t: 'bundle', items: Array.from({ length: bundleLimits.maxItems + 1 }, () => good.wire) }), /1-64 records/],
      [encodeCanonical({ t: 'bundle', items: [good.wire, 'text'] }), /items must be bytes/],
      [encodeCanonical({ t: 'bundle', items: [good.wire], extra: 1 }), /\{ t, items \}/],
      [encodeCanonical({ t: 'bundle', items: good.wire }), /\{ t, items \}/],
      [encodeCanonical({ t: 'bundle', items: [Uint8Array.of(0xff)] }), /canonical CBOR/],
      [encodeCanonical([good.wire]), /must be a map/]
    ]
    for (const [bytes, reason] of cases) {
      const receiver = table(hosts[1]!)
      const outcome = receiver.receiveGossip(bytes, 'peer-x', T0)
      expect(outcome.verdict).toBe('reject')
      expect(outcome.reason).toMatch(reason)
      expect(receiver.size).toBe(0)
    }
  })

  it('packs any records into bundles within the limits, in order, that read back as the same records', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: limits.maxMessageBytes }), { maxLength: 200 }), (sizes) => {
      const records = sizes.map((n, i) => new Uint8Array(n).fill(i % 251))
      const bundles = packBundles(records)
      for (const b of bundles) expect(b.byteLength).toBeLessThanOrEqual(bundleLimits.maxBytes)
      const back = bundles.flatMap(b => {
        const items = gossipRecords(b)
        expect(items.length).toBeLessThanOrEqual(bundleLimits.maxItems)
        return items
      })
      expect(back).toEqual(records)
      // As few bundles as the item limit allows when records are small.
      if (sizes.every(n => n < 1000)) expect(bundles.length).toBe(Math.ceil(records.length / bundleLimits.maxItems))
    }), { seed: 11, numRuns: 60 })
  })

  it('detects equivocation and keeps both signed copies as evidence', () => {
    const host = hosts[0]!
    const receiver = table(hosts[1]!)
    const a = signVcv(body(host, 'calc', 4, { description: 'honest' }), host)
    const b = signVcv(body(host, 'calc', 4, { description: 'two-faced' }), host)
    expect(receiver.receiveGossip(a.wire, 'p', T0).verdict).toBe('accept')
    const outcome = receiver.receiveGossip(b.wire, 'p', T0)
    expect(outcome).toMatchObject({ verdict: 'ignore', reason: 'equivocation' })
    expect(receiver.flaggedHosts()).toEqual([host.peerId])
    const [kept, other] = receiver.evidence(host.peerId)[0]!
    expect(kept.body.description).toBe('honest')
    expect(other.body.description).toBe('two-faced')
    // The evidence convinces a third party on its own: both copies carry the host's valid signature.
    for (const r of [kept, other]) expect(verifyRecord(decodeRecord(r.wire), verifier)).toBe(true)
    expect(receiver.get(a.body.agent)!.body.description).toBe('honest')
  })

  it('expires an entry exactly when its lifetime ends', () => {
    const host = hosts[0]!
    fc.assert(fc.property(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 0, max: 200_000 }), (ttl, at) => {
      const receiver = table(hosts[1]!)
      const vcv = signVcv(body(host, 'calc', 1, { expiresAt: T0 + ttl }), host)
      expect(receiver.receiveGossip(vcv.wire, 'p', T0).verdict).toBe('accept')
      const removed = events(receiver.tick(T0 + at)).filter(e => e.type === 'removed')
      expect(receiver.size).toBe(at < ttl ? 1 : 0)
      expect(removed).toEqual(at < ttl ? [] : [{ type: 'removed', agent: vcv.body.agent, reason: 'expired' }])
    }), { seed: 3, numRuns: 100 })
  })

  it('asks to be woken for the earliest expiry, no earlier than the tick floor', () => {
    const host = hosts[0]!
    const receiver = table(hosts[1]!, { tickFloorMs: 100 })
    const late = signVcv(body(host, 'late', 1, { expiresAt: T0 + 5000 }), host)
    const soon = signVcv(body(host, 'soon', 1, { expiresAt: T0 + 2000 }), host)
    expect(receiver.receiveGossip(late.wire, 'p', T0).effects).toContainEqual({ type: 'timer', at: T0 + 5000 })
    expect(receiver.receiveGossip(soon.wire, 'p', T0).effects).toContainEqual({ type: 'timer', at: T0 + 2000 })
    const effects = receiver.tick(T0 + 2000)
    expect(effects).toContainEqual({ type: 'timer', at: T0 + 5000 })
  })

  it('withdraws by signed tombstone, and an old version cannot resurrect the agent', () => {
    const [a, b] = [table(hosts[0]!), table(hosts[1]!)]
    const adverts = broadcasts(a.advertise(localAgent('calc'), T0))
    expect(b.receiveGossip(adverts[0]!, 'a', T0).verdict).toBe('accept')
    const tomb = broadcasts(a.withdraw('calc', T0 + 1))[0]!
    const outcome = b.receiveGossip(tomb, 'a', T0 + 1)
    expect(outcome.verdict).toBe('accept')
    expect(events(outcome.effects)).toContainEqual({ type: 'removed', agent: `${hosts[0]!.peerId}/calc`, reason: 'withdrawn' })
    expect(b.size).toBe(0)
    expect(b.receiveGossip(adverts[0]!, 'a', T0 + 2)).toMatchObject({ verdict: 'ignore', reason: 'withdrawn' })
    expect(a.size).toBe(0)
    // Advertising again takes a higher version and brings it back everywhere.
    const again = broadcasts(a.advertise(localAgent('calc'), T0 + 3))[0]!
    expect(b.receiveGossip(again, 'a', T0 + 3).verdict).toBe('accept')
    expect(b.get(`${hosts[0]!.peerId}/calc`)!.body.version).toBe(3)
  })

  it('a newer VCV supersedes a tombstone, and digests stay valid after that entry expires', () => {
    const host = hosts[0]!
    const b = table(hosts[1]!)
    const tomb = signTombstone({ v: WIRE_VERSION, agent: `${host.peerId}/calc`, version: 2, issuedAt: T0, expiresAt: T0 + 60_000 }, host)
    const back = signVcv(body(host, 'calc', 3, { expiresAt: T0 + 1000 }), host)
    expect(b.receiveGossip(tomb.wire, 'p', T0).verdict).toBe('accept')
    expect(b.receiveGossip(back.wire, 'p', T0).verdict).toBe('accept')
    b.tick(T0 + 1000)
    expect(b.size).toBe(0)
    // The peer that gets our digest must be able to read it.
    const c = table(hosts[2]!)
    const digest = b.peerConnected(hosts[2]!.peerId, T0 + 1000).find(e => e.type === 'send')!
    expect(c.receiveDirect(hosts[1]!.peerId, (digest as { data: Uint8Array }).data, T0 + 1000).verdict).toBe('accept')
  })

  it('restores saved records: verified again, expired ones and its own dropped, nothing re-broadcast', () => {
    const [host, self] = [hosts[0]!, hosts[1]!]
    const before = table(self)
    const long = signVcv(body(host, 'long', 1, { expiresAt: T0 + 60_000 }), host)
    const short = signVcv(body(host, 'short', 1, { expiresAt: T0 + 1000 }), host)
    before.receiveGossip(long.wire, 'p', T0)
    before.receiveGossip(short.wire, 'p', T0)
    before.advertise(localAgent('mine'), T0)
    const saved = before.records(T0)
    expect(saved).toHaveLength(3)
    const badSig = long.sig.slice()
    badSig[0] = badSig[0]! ^ 1
    const tampered = encodeCanonical({ t: 'vcv', body: long.bodyBytes, sig: badSig })

    const after = table(self)
    const effects = after.restore([tampered, ...saved], T0 + 5000) // the short one has expired since
    expect(after.agents().map(v => v.body.agent)).toEqual([long.body.agent])
    expect(effects.filter(e => e.type === 'broadcast')).toEqual([])
    expect(events(effects)).toContainEqual({ type: 'rejected', from: undefined, reason: 'bad signature' })
  })

  it('re-advertises local agents before they expire, with a new version', () => {
    const a = table(hosts[0]!, { ttlMs: 30_000 })
    const first = a.advertise(localAgent('calc'), T0)
    expect(first).toContainEqual({ type: 'timer', at: T0 + 10_000 })
    expect(broadcasts(a.tick(T0 + 9_999))).toHaveLength(0)
    const refreshed = broadcasts(a.tick(T0 + 10_000))
    expect(refreshed).toHaveLength(1)
    expect(decodeRecord(refreshed[0]!).body).toMatchObject({ version: 2, issuedAt: T0 + 10_000, expiresAt: T0 + 40_000 })
    expect(a.versions()).toEqual({ calc: 2 })
  })

  it('a restarted host that lost its version counter jumps past its old versions', () => {
    const signer = hosts[0]!
    const before = table(signer)
    const b = table(hosts[1]!)
    for (let i = 0; i < 5; i++) for (const w of broadcasts(before.advertise(localAgent('calc'), T0 + i))) b.receiveGossip(w, 'a', T0 + i)
    const after = table(signer) // fresh state, same key
    const stale = broadcasts(after.advertise(localAgent('calc'), T0 + 10))[0]!
    expect(b.receiveGossip(stale, 'a', T0 + 10)).toMatchObject({ verdict: 'ignore', reason: 'stale version' })
    const tables = new Map([[signer.peerId, after], [hosts[1]!.peerId, b]])
    pump(tables, [
      { from: signer.peerId, effects: after.peerConnected(hosts[1]!.peerId, T0 + 10) },
      { from: hosts[1]!.peerId, effects: b.peerConnected(signer.peerId, T0 + 10) }
    ], T0 + 10)
    expect(after.versions().calc).toBe(6)
    expect(after.get(`${signer.peerId}/calc`)!.body.version).toBe(6)
  })

  it('anti-entropy makes any set of tables converge to the union of what they know', () => {
    const signers = hosts.slice(0, 4)
    fc.assert(fc.property(
      fc.array(fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 3 }), { minLength: 4, maxLength: 4 }),
      fc.array(fc.tuple(fc.nat(3), fc.nat(3), fc.boolean()), { maxLength: 20 }),
      (agentVersions, gossip) => {
        const tables = new Map(signers.map(s => [s.peerId, table(s)] as const))
        const wires: Uint8Array[][] = signers.map(() => [])
        signers.forEach((s, i) => agentVersions[i]!.forEach((times, j) => {
          for (let k = 0; k < times; k++) wires[i]!.push(...broadcasts(tables.get(s.peerId)!.advertise(localAgent(`a${j}`), T0)))
        }))
        // Some gossip gets through before the peers connect, some is lost.
        for (const [from, to, deliver] of gossip) {
          for (const w of wires[from]!) if (deliver) tables.get(signers[to]!.peerId)!.receiveGossip(w, 'x', T0)
        }
        const queue = []
        for (const x of signers) for (const y of signers) {
          if (x !== y) queue.push({ from: x.peerId, effects: tables.get(x.peerId)!.peerConnected(y.peerId, T0) })
        }
        pump(tables, queue, T0)
        const expected = new Map<string, number>()
        signers.forEach((s, i) => agentVersions[i]!.forEach((times, j) => expected.set(`${s.peerId}/a${j}`, times)))
        for (const t of tables.values()) {
          expect(new Map(t.agents().map((v: SignedVcv) => [v.body.agent, v.body.version]))).toEqual(expected)
        }
      }), { seed: 11, numRuns: 40 })
  })

  it('republishes a record learned off-gossip after its delay, unless gossip brought it meanwhile', () => {
    const [a, b, c] = [signVcv(body(hosts[0]!, 'calc', 1), hosts[0]!), signVcv(body(hosts[1]!, 'calc', 1), hosts[1]!), signVcv(body(hosts[2]!, 'calc', 1), hosts[2]!)]
    const receiver = table(hosts[4]!, { republishDelayMs: 1000 })
    const learned = receiver.receiveDirect('neighbour', encodeDirect({ t: 'batch', items: [a.wire, b.wire, c.wire] }), T0)
    expect(learned.verdict).toBe('accept')
    expect(broadcasts(learned.effects)).toEqual([])
    // Woken within the jittered delay (0.5-1.5 s, no earlier than the tick floor).
    const wake = learned.effects.flatMap(e => e.type === 'timer' ? [e.at] : [])
    expect(Math.min(...wake)).toBeGreaterThanOrEqual(T0 + 500)
    expect(Math.min(...wake)).toBeLessThanOrEqual(T0 + 1500)
    // b comes by gossip meanwhile (someone else republished it), c as part of a bundle: those
    // messages are forwarded (accept) in place of this peer's own republish; a repeat is a duplicate.
    expect(receiver.receiveGossip(b.wire, 'other', T0 + 100)).toMatchObject({ verdict: 'accept', reason: 'forwarded instead of republished' })
    expect(receiver.receiveGossip(b.wire, 'other', T0 + 100)).toMatchObject({ verdict: 'ignore', reason: 'duplicate' })
    expect(receiver.receiveGossip(packBundles([c.wire])[0]!, 'other', T0 + 100).verdict).toBe('accept')
    expect(receiver.size).toBe(3)
    expect(broadcasts(receiver.tick(T0 + 400))).toEqual([])
    expect(broadcasts(receiver.tick(T0 + 1500))).toEqual([a.wire])
    expect(broadcasts(receiver.tick(T0 + 3000))).toEqual([])
    // Without a delay (the default) it goes out at once, as before.
    const eager = table(hosts[4]!)
    expect(broadcasts(eager.receiveDirect('neighbour', encodeDirect({ t: 'batch', items: [a.wire] }), T0).effects)).toEqual([a.wire])
  })

  it('ignores records from the future beyond the skew allowance and already-expired ones', () => {
    const host = hosts[0]!
    const receiver = new CapabilityTable({ signer: hosts[1]!, verifier: { verify: () => true }, random: () => 0, maxSkewMs: 1000 })
    const future = signVcv(body(host, 'calc', 1, { issuedAt: T0 + 1001, expiresAt: T0 + 9000 }), host)
    const expired = signVcv(body(host, 'calc', 2, { issuedAt: T0 - 9000, expiresAt: T0 }), host)
    expect(receiver.receiveGossip(future.wire, 'p', T0).reason).toMatch(/future/)
    expect(receiver.receiveGossip(expired.wire, 'p', T0).reason).toBe('expired')
  })

  it('a neighbour introduces new hosts only within its admission budget; ignored, never rejected; held hosts and other neighbours unaffected; refills with time', async () => {
    const fresh = await makeSigners(40)
    const vcvOf = (h: Signer, name = 'calc') => signVcv(body(h, name, 1, { expiresAt: T0 + 600_000 }), h).wire
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 39 }), fc.integer({ min: 0, max: 3000 })), { minLength: 1, maxLength: 120 }), (arrivals) => {
      const receiver = table(hosts[1]!, { admission: { gossip: { burst: 5, perSecond: 2 }, direct: { burst: 10, perSecond: 2 } } })
      let now = T0
      const admitted = new Set<string>()
      for (const [h, gap] of arrivals) {
        now += gap
        const outcome = receiver.receiveGossip(vcvOf(fresh[h]!), 'rogue', now)
        expect(outcome.verdict).not.toBe('reject')
        if (outcome.verdict === 'accept') admitted.add(fresh[h]!.peerId)
        // Never more new hosts than the burst plus the refill over the time elapsed.
        expect(admitted.size).toBeLessThanOrEqual(5 + Math.floor((now - T0) / 1000 * 2))
      }
      // A host already held brings more agents whatever the budget (its quota bounds them).
      const held = fresh.find(f => admitted.has(f.peerId))
      if (held !== undefined) expect(receiver.receiveGossip(vcvOf(held, 'other'), 'rogue', now).verdict).toBe('accept')
    }), { seed: 11, numRuns: 100 })

    const receiver = table(hosts[1]!, { admission: { gossip: { burst: 2, perSecond: 1 }, direct: { burst: 3, perSecond: 1 } } })
    expect(receiver.receiveGossip(vcvOf(fresh[0]!), 'rogue', T0).verdict).toBe('accept')
    expect(receiver.receiveGossip(vcvOf(fresh[1]!), 'rogue', T0).verdict).toBe('accept')
    expect(receiver.receiveGossip(vcvOf(fresh[2]!), 'rogue', T0)).toMatchObject({ verdict: 'ignore', reason: /admission budget/, flood: 'admission' })
    // Another neighbour has its own budget; anti-entropy has its own; a second later the rogue has one more.
    expect(receiver.receiveGossip(vcvOf(fresh[3]!), 'honest', T0).verdict).toBe('accept')
    expect(receiver.receiveDirect('rogue', encodeDirect({ t: 'batch', items: [vcvOf(fresh[4]!), vcvOf(fresh[5]!)] }), T0).verdict).toBe('accept')
    expect(receiver.receiveGossip(vcvOf(fresh[2]!), 'rogue', T0 + 1000).verdict).toBe('accept')
    // Hosts new to a table, learned by anti-entropy, are republished only within the gossip budget
    // neighbours grant (else they would count it as a flood); updates of held hosts always are.
    const healed = table(hosts[1]!, { admission: { gossip: { burst: 3, perSecond: 1 }, direct: { burst: 100, perSecond: 1 } } })
    const batch = healed.receiveDirect('peer', encodeDirect({ t: 'batch', items: fresh.slice(0, 10).map(f => vcvOf(f)) }), T0)
    expect(events(batch.effects).filter(e => e.type === 'added')).toHaveLength(10)
    expect(broadcasts(batch.effects)).toHaveLength(3)
    const update = healed.receiveDirect('peer', encodeDirect({ t: 'batch', items: [signVcv(body(fresh[9]!, 'calc', 2, { expiresAt: T0 + 600_000 }), fresh[9]!).wire] }), T0)
    expect(broadcasts(update.effects)).toHaveLength(1)
    // Restored records (no neighbour) are not counted; admission: false turns the bound off.
    const open = table(hosts[1]!, { admission: false })
    for (const f of fresh) expect(open.receiveGossip(vcvOf(f), 'rogue', T0).verdict).toBe('accept')
  })

  it('holds at most maxAgentsPerHost agents of one host, whatever arrives; other hosts and updates still get in; expiry frees the quota', () => {
    const sybil = hosts[0]!
    const honest = hosts[2]!
    // 12 names, each as versions 1-2 and a tombstone at version 3, in any order.
    const records = Array.from({ length: 12 }, (_, i) => [
      signVcv(body(sybil, `a${i}`, 1), sybil).wire,
      signVcv(body(sybil, `a${i}`, 2), sybil).wire,
      signTombstone({ v: WIRE_VERSION, agent: `${sybil.peerId}/a${i}`, version: 3, issuedAt: T0, expiresAt: T0 + 60_000 }, sybil).wire
    ]).flat()
    const held = (t: CapabilityTable): Set<string> => new Set([...t.records(T0)].map(w => decodeRecord(w).body.agent))
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: records.length - 1 }), { minLength: 1, maxLength: 80 }), (order) => {
      const receiver = table(hosts[1]!, { maxAgentsPerHost: 5 })
      for (const i of order) {
        const outcome = receiver.receiveGossip(records[i]!, sybil.peerId, T0)
        // Never a penalty: an honest forwarder may hold the host's agents in another order.
        expect(outcome.verdict).not.toBe('reject')
        expect(held(receiver).size).toBeLessThanOrEqual(5)
      }
      // An agent already held still moves forward (update or withdrawal) at the quota.
      const first = [...held(receiver)][0]
      if (first !== undefined && held(receiver).size === 5) {
        const next = signTombstone({ v: WIRE_VERSION, agent: first, version: 9, issuedAt: T0, expiresAt: T0 + 60_000 }, sybil)
        expect(receiver.receiveGossip(next.wire, 'p', T0).verdict).toBe('accept')
      }
      // Another host is not affected by this one's quota.
      expect(receiver.receiveGossip(signVcv(body(honest, 'calc', 1), honest).wire, 'p', T0).verdict).toBe('accept')
    }), { seed: 7, numRuns: 150 })

    const receiver = table(hosts[1]!, { maxAgentsPerHost: 2 })
    const vcv = (name: string, expiresAt: number): Uint8Array => signVcv(body(sybil, name, 1, { expiresAt }), sybil).wire
    expect(receiver.receiveGossip(vcv('x1', T0 + 1000), 'p', T0).verdict).toBe('accept')
    expect(receiver.receiveGossip(vcv('x2', T0 + 60_000), 'p', T0).verdict).toBe('accept')
    const over = receiver.receiveGossip(vcv('x3', T0 + 60_000), 'p', T0)
    expect(over).toMatchObject({ verdict: 'ignore', reason: 'host over its quota of 2 agents' })
    // A forwarder may relay it; the host itself pushing past its quota is flooding.
    expect(over.flood).toBeUndefined()
    expect(receiver.receiveGossip(vcv('x4', T0 + 60_000), sybil.peerId, T0)).toMatchObject({ verdict: 'ignore', flood: 'quota' })
    receiver.tick(T0 + 1000) // x1 expires: its place is free again
    expect(receiver.receiveGossip(vcv('x3', T0 + 60_000), 'p', T0 + 1000).verdict).toBe('accept')
  })
})
