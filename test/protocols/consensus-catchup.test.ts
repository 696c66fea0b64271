// Catch-up (protocols/consensus/catch-up.ts) and a member giving up a silent requester's instance,
// on the pure machines: messages are pumped by hand, time is a number.
import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { decodeCanonical, encodeCanonical } from '../../protocols/cbor.ts'
import type { Effect } from '../../protocols/effects.ts'
import { decodeCertificate, verifyCertificate } from '../../protocols/consensus/certificate.ts'
import { instanceId } from '../../protocols/consensus/committee.ts'
import { ConsensusPeer, type ConsensusPeerEvent } from '../../protocols/consensus/peer.ts'
import { CertificateStore } from '../../protocols/consensus/certificate-store.ts'
import { CERTS_REPLY_BYTES, GET_IDS, MAX_TRIES, PAGE_IDS, RETRY_MS } from '../../protocols/consensus/catch-up.ts'
import { wireHash } from '../../protocols/consensus/signed.ts'
import { setupCommittee } from '../helpers/committee.ts'
import { makeCertificate } from '../helpers/certificates.ts'

type Out = Array<Effect<ConsensusPeerEvent>>
const SEED = 31

const { signers, verifier } = setupCommittee(4, SEED)
const POOL = Array.from({ length: 1500 }, (_, i) => makeCertificate(signers, `c/${i}`))
const idOf = (bytes: Uint8Array): string => wireHash(decodeCertificate(bytes).statement)

function machine (i: number, opts: { maxCertificates?: number } = {}): ConsensusPeer {
  return new ConsensusPeer({ signer: signers[i]!, verifier, ...opts })
}

interface Net { peers: Map<string, ConsensusPeer>, sent: Array<{ from: string, to: string, data: Uint8Array }>, messages: number, bytes: number }

/** Delivers sends until none are left (FIFO); `drop` may lose some. Returns the last time used. */
function pump (net: Net, from: string, effects: Out, now: number, drop: (m: { from: string, to: string, data: Uint8Array }) => boolean = () => false): void {
  const queue: Array<{ from: string, effects: Out }> = [{ from, effects }]
  while (queue.length > 0) {
    const { from, effects } = queue.shift()!
    for (const e of effects) {
      if (e.type !== 'send') continue
      const m = { from, to: e.to, data: e.data }
      net.sent.push(m)
      net.messages++
      net.bytes += e.data.byteLength
      if (drop(m)) continue
      const to = net.peers.get(e.to)
      if (to !== undefined) queue.push({ from: e.to, effects: to.receive(from, e.data, now) })
    }
  }
}

function connect (a: ConsensusPeer, b: ConsensusPeer, now = 0): Net {
  const net: Net = { peers: new Map([[a.peerId, a], [b.peerId, b]]), sent: [], messages: 0, bytes: 0 }
  pump(net, a.peerId, a.peerConnected(b.peerId), now)
  pump(net, b.peerId, b.peerConnected(a.peerId), now)
  return net
}

const kinds = (net: Net): Record<string, number> => {
  const n: Record<string, number> = {}
  for (const m of net.sent) { const k = (decodeCanonical(m.data) as { k: string }).k; n[k] = (n[k] ?? 0) + 1 }
  return n
}

describe('catch-up: paging through what another peer holds', () => {
  it('test certificates verify (else nothing below means anything)', () => {
    const check = verifyCertificate((decodeCanonical(POOL[0]!) as never), verifier)
    expect(check.ok).toBe(true)
  })

  it('after one connection both peers hold the union of their certificates, however many (up to 1500) and however split', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: POOL.length }),
      fc.array(fc.boolean(), { minLength: POOL.length, maxLength: POOL.length }),
      fc.integer({ min: 0, max: 40 }),
      (k, inB, extra) => {
        const a = machine(0)
        const b = machine(1)
        const mineA = POOL.slice(0, k)
        const mineB = [...mineA.filter((_, i) => inB[i]), ...POOL.slice(k, Math.min(POOL.length, k + extra))]
        a.restore(mineA, 0)
        b.restore(mineB, 0)
        connect(a, b)
        const union = new Set([...a.certificateIds(), ...b.certificateIds()])
        expect(union.size).toBe(Math.min(POOL.length, k + extra))
        expect(new Set(b.certificateIds())).toEqual(union)
        expect(new Set(a.certificateIds())).toEqual(union)
        expect(a.catchingUpFrom()).toEqual([])
        expect(b.catchingUpFrom()).toEqual([])
      }
    ), { numRuns: 8, seed: 7 })
  })

  it('peers that hold the same set exchange one summary each, nothing more', () => {
    const a = machine(0)
    const b = machine(1)
    a.restore(POOL.slice(0, 700), 0)
    b.restore([...POOL.slice(0, 700)].reverse(), 0) // other arrival order, same set
    const net = connect(a, b)
    expect(kinds(net)).toEqual({ inv: 2 })
  })

  it('a certificate gained after the summaries crossed still arrives: a holder whose set changed since its summary answers a differing one with its own', () => {
    // Two peers exchange empty summaries; then a gets a certificate whose gossip to b was lost
    // (gossipsub drops a publish while a stream is opening). b's next summary (sent when it sees
    // a's subscription) is answered with a's, so b fetches it. Nothing changed on b's side, so b does not answer back.
    const a = machine(0)
    const b = machine(1)
    const net = connect(a, b)
    a.restore(POOL.slice(0, 3), 0)
    net.sent.length = 0
    pump(net, b.peerId, b.peerConnected(a.peerId), 0)
    expect(new Set(b.certificateIds())).toEqual(new Set(a.certificateIds()))
    expect(kinds(net)).toEqual({ inv: 2, list: 1, ids: 1, get: 1, certs: 1 })
    // Peers that both hold something the other lacks: each pages once, no inv ping-pong.
    const c = machine(2)
    const d = machine(3)
    c.restore(POOL.slice(0, 5), 0)
    d.restore(POOL.slice(3, 9), 0)
    const both = connect(c, d)
    expect(c.certificateIds()).toHaveLength(9)
    expect(d.certificateIds()).toHaveLength(9)
    expect(kinds(both).inv).toBe(2)
    expect(kinds(both).list).toBe(2)
  })

  it('fetches in pages of at most PAGE_IDS ids and GET_IDS certificates, one request outstanding at a time', () => {
    const a = machine(0)
    const b = machine(1)
    a.restore(POOL.slice(0, 1300), 0)
    const net = connect(a, b)
    expect(b.certificateIds()).toHaveLength(1300)
    const k = kinds(net)
    expect(k.list).toBe(Math.ceil(1300 / PAGE_IDS))
    expect(k.get).toBe(Math.ceil(512 / GET_IDS) * 2 + Math.ceil((1300 - 1024) / GET_IDS))
    for (const m of net.sent) {
      const msg = decodeCanonical(m.data) as { k: string, ids?: unknown[], certs?: Uint8Array[] }
      if (msg.k === 'ids') expect(msg.ids!.length).toBeLessThanOrEqual(PAGE_IDS)
      if (msg.k === 'certs') expect(msg.certs!.reduce((n, c) => n + c.byteLength, 0)).toBeLessThanOrEqual(CERTS_REPLY_BYTES)
    }
    // Strict alternation request → answer: never two requests from b in a row.
    const fromB = net.sent.filter(m => m.from === b.peerId).map(m => (decodeCanonical(m.data) as { k: string }).k)
    const fromA = net.sent.filter(m => m.from === a.peerId && !['inv'].includes((decodeCanonical(m.data) as { k: string }).k))
    expect(fromA.length).toBe(fromB.filter(k => k !== 'inv').length)
  })

  it('fetches at most its certificate cap from one peer, and never fetches back what it forgot for the cap', () => {
    const a = machine(0)
    a.restore(POOL.slice(0, 300), 0)
    const b = machine(1, { maxCertificates: 100 })
    const net = connect(a, b)
    const asked = net.sent.filter(m => m.from === b.peerId).map(m => decodeCanonical(m.data) as { k: string, ids?: string[] }).filter(m => m.k === 'get').flatMap(m => m.ids!)
    expect(asked).toHaveLength(100)
    expect(b.certificateIds()).toHaveLength(100)
    // b keeps 100: the first 100 it fetched. Connecting again fetches nothing it already had.
    const b2 = machine(1, { maxCertificates: 100 })
    b2.restore(POOL.slice(0, 150), 0) // 50 forgotten
    const net2 = connect(a, b2)
    const asked2 = net2.sent.filter(m => m.from === b2.peerId).map(m => decodeCanonical(m.data) as { k: string, ids?: string[] }).filter(m => m.k === 'get').flatMap(m => m.ids!)
    const forgotten = new Set(POOL.slice(0, 50).map(idOf))
    expect(asked2.some(id => forgotten.has(id))).toBe(false)
    expect(asked2).toHaveLength(100)
  })

  it('sends a lost request again after RETRY_MS, and gives up (loudly) after MAX_TRIES', () => {
    const a = machine(0)
    a.restore(POOL.slice(0, 100), 0)
    const b = machine(1)
    const net: Net = { peers: new Map([[a.peerId, a], [b.peerId, b]]), sent: [], messages: 0, bytes: 0 }
    let lose = 1
    pump(net, a.peerId, a.peerConnected(b.peerId), 0, m => m.to === a.peerId && (decodeCanonical(m.data) as { k: string }).k === 'get' && lose-- > 0)
    expect(b.certificateIds()).toHaveLength(0)
    const before = b.tick(RETRY_MS - 1)
    expect(before.some(e => e.type === 'send')).toBe(false)
    pump(net, b.peerId, b.tick(RETRY_MS), RETRY_MS)
    expect(b.certificateIds()).toHaveLength(100)

    // A holder that never answers: three tries, then a rejected event, and the session is gone.
    const c = machine(2)
    c.receive(a.peerId, encodeCanonical({ k: 'inv', n: 5, x: 'ab'.repeat(32) }), 0)
    let now = 0
    const events: Out = []
    for (let i = 0; i < MAX_TRIES + 1; i++) events.push(...c.tick(now += RETRY_MS))
    expect(events.filter(e => e.type === 'send')).toHaveLength(MAX_TRIES - 1)
    expect(events).toContainEqual({ type: 'event', event: expect.objectContaining({ type: 'rejected', reason: expect.stringMatching(/did not answer a catch-up request/) }) })
    expect(c.catchingUpFrom()).toEqual([])
  })

  it('a hostile holder cannot keep it paging or fetching for ever, nor feed it pages it did not ask for', () => {
    const b = machine(1, { maxCertificates: 1000 })
    const evil = signers[0]!.peerId
    const fake = (n: number, base: number): string[] => Array.from({ length: n }, (_, i) => (base + i).toString(16).padStart(64, '0'))
    // Unsolicited pages are ignored.
    expect(b.receive(evil, encodeCanonical({ k: 'ids', ids: fake(10, 0), next: 9, more: true }), 0)).toEqual([])
    let out = b.receive(evil, encodeCanonical({ k: 'inv', n: 1e9, x: 'ab'.repeat(32) }), 0)
    let cursor = 0
    let requests = 0
    let asked = 0
    // The hostile holder answers every list with 512 new ids and every get with nothing.
    for (let guard = 0; guard < 10_000; guard++) {
      const send = out.find(e => e.type === 'send')
      if (send === undefined || send.type !== 'send') break
      requests++
      const m = decodeCanonical(send.data) as { k: string, ids?: string[] }
      if (m.k === 'list') {
        out = b.receive(evil, encodeCanonical({ k: 'ids', ids: fake(PAGE_IDS, cursor), next: cursor + PAGE_IDS - 1, more: true }), 0)
        cursor += PAGE_IDS
      } else {
        asked += m.ids!.length
        out = b.receive(evil, encodeCanonical({ k: 'certs', certs: [] }), 0)
      }
    }
    expect(asked).toBeLessThanOrEqual(1000)
    expect(requests).toBeLessThan(100)
    expect(b.catchingUpFrom()).toEqual([])
    // A cursor that does not move forward ends it too.
    b.receive(evil, encodeCanonical({ k: 'inv', n: 3, x: 'cd'.repeat(32) }), 0)
    const stuck = b.receive(evil, encodeCanonical({ k: 'ids', ids: [], next: -1, more: true }), 0)
    expect(stuck.some(e => e.type === 'send')).toBe(false)
    b.receive(evil, encodeCanonical({ k: 'inv', n: 3, x: 'cd'.repeat(32) }), 0)
    b.receive(evil, encodeCanonical({ k: 'ids', ids: fake(1, 5), next: 10, more: true }), 0)
    // (a get is now outstanding; answer it, then a page that goes backwards)
    b.receive(evil, encodeCanonical({ k: 'certs', certs: [] }), 0)
    const back = b.receive(evil, encodeCanonical({ k: 'ids', ids: fake(1, 99), next: 3, more: true }), 0)
    expect(back).toContainEqual({ type: 'event', event: expect.objectContaining({ type: 'rejected', reason: expect.stringMatching(/did not move forward/) }) })
    // Oversized requests are refused, not answered.
    const big = b.receive(evil, encodeCanonical({ k: 'get', ids: fake(GET_IDS + 1, 0) }), 0)
    expect(big.some(e => e.type === 'send')).toBe(false)
    expect(big).toContainEqual({ type: 'event', event: expect.objectContaining({ type: 'rejected' }) })
  })

  it('answers a get within CERTS_REPLY_BYTES even when the certificates asked for are large', () => {
    const a = machine(0)
    a.restore(POOL.slice(0, 64), 0)
    const ids = a.certificateIds()
    const reply = a.receive(signers[1]!.peerId, encodeCanonical({ k: 'get', ids }), 0)
    const certs = (decodeCanonical((reply[0] as { data: Uint8Array }).data) as { certs: Uint8Array[] }).certs
    expect(certs).toHaveLength(Math.min(64, Math.floor(CERTS_REPLY_BYTES / POOL[0]!.byteLength)))
  })
})

describe('certificate store: cursors stay valid while old ones are forgotten and new ones arrive', () => {
  it('pages in arrival order, and a cursor taken before evictions still lists exactly what came after it', () => {
    const id = (i: number): string => i.toString(16).padStart(64, '0')
    const store = new CertificateStore(5)
    for (let i = 0; i < 4; i++) store.add(id(i), new Uint8Array([i]))
    const first = store.after(-1, 2)
    expect(first).toEqual({ ids: [id(0), id(1)], next: 1, more: true })
    for (let i = 4; i < 2000; i++) store.add(id(i), new Uint8Array([i & 0xff])) // forgets 0..1994
    expect(store.after(first.next, 3)).toEqual({ ids: [id(1995), id(1996), id(1997)], next: 1997, more: true })
    expect(store.after(1997, 10)).toEqual({ ids: [id(1998), id(1999)], next: 1999, more: false })
    expect(store.after(1999, 10)).toEqual({ ids: [], next: 1999, more: false })
    // It remembers the last `max` ids it forgot (not fetched back), not all of them.
    expect(store.forgot(id(1994))).toBe(true)
    expect(store.has(id(1994))).toBe(false)
    expect(store.forgot(id(3))).toBe(false)
    // The digest is of the set, not the order.
    const other = new CertificateStore(5)
    for (let i = 1999; i >= 1995; i--) other.add(id(i), new Uint8Array([0]))
    expect(other.digest()).toBe(store.digest())
  })
})

describe('a member gives up an instance whose requester went silent', () => {
  const GIVE_UP = 60_000
  const setup = setupCommittee(4, 12, { subtask: 'silent/1' })
  const requester = setup.signers[0]!.peerId
  const start = encodeCanonical({ k: 'start', statement: setup.statement.wire, answers: [] })

  function member (): { peer: ConsensusPeer, id: string } {
    const peer = new ConsensusPeer({ signer: setup.signers[1]!, verifier: setup.verifier, memberGiveUpMs: GIVE_UP })
    peer.receive(requester, start, 0)
    return { peer, id: instanceId(setup.statement) }
  }

  it('after memberGiveUpMs without a word from the requester: freed, reported, and never started again', () => {
    const { peer, id } = member()
    expect(peer.instance(id)).toBeDefined()
    // Its timer covers the give-up: a driver that only ticks when asked still gets there.
    const abandoned = (out: Out): boolean => out.some(e => e.type === 'event' && e.event.type === 'abandoned')
    expect(abandoned(peer.tick(GIVE_UP - 1))).toBe(false)
    const out = peer.tick(GIVE_UP)
    expect(out).toContainEqual({ type: 'event', event: { type: 'abandoned', instance: id, reason: expect.stringMatching(/sent nothing for 60 s/) } })
    expect(peer.instance(id)).toBeUndefined()
    // Retired: a late start is refused, a late message is neither held nor answered.
    const late = peer.receive(requester, start, GIVE_UP + 1)
    expect(late).toContainEqual({ type: 'event', event: expect.objectContaining({ type: 'rejected', reason: expect.stringMatching(/already took part/) }) })
    expect(peer.instance(id)).toBeUndefined()
    expect(peer.receive(requester, encodeCanonical({ k: 'msg', i: id, m: new Uint8Array(10) }), GIVE_UP + 2).filter(e => e.type === 'send')).toEqual([])
    expect(abandoned(peer.tick(10 * GIVE_UP))).toBe(false) // reported once
  })

  it('after its record of joined instances was damaged, it joins no other peer\'s instance until the give-up time has passed', () => {
    const id = instanceId(setup.statement)
    const wary = new ConsensusPeer({ signer: setup.signers[1]!, verifier: setup.verifier, memberGiveUpMs: GIVE_UP, joinedUnknownUntil: GIVE_UP })
    const early = wary.receive(requester, start, GIVE_UP - 1)
    expect(early).toContainEqual({ type: 'event', event: expect.objectContaining({ type: 'rejected', reason: expect.stringMatching(/was damaged: it joins no other peer's instance for 1 s more/) }) })
    expect(wary.instance(id)).toBeUndefined()
    // Its own instances are new ones (a restarted requester does not resume tasks): those it starts.
    const own = new ConsensusPeer({ signer: setup.signers[0]!, verifier: setup.verifier, joinedUnknownUntil: GIVE_UP })
    expect(own.start(setup.statement.wire, [], 0).instance).toBe(id)
    // Once every instance it could have forgotten is over, it takes part again.
    wary.receive(requester, start, GIVE_UP)
    expect(wary.instance(id)).toBeDefined()
  })

  it('the give-up time is in its timer effects', () => {
    const peer = new ConsensusPeer({ signer: setup.signers[1]!, verifier: setup.verifier, memberGiveUpMs: GIVE_UP })
    let at = Infinity
    let now = 0
    for (const e of peer.receive(requester, start, 0)) if (e.type === 'timer') at = e.at
    // Follow the timers only (nothing else arrives): the instance is given up at exactly GIVE_UP.
    for (let guard = 0; guard < 1000 && at !== Infinity; guard++) {
      now = at
      at = Infinity
      const out = peer.tick(now)
      if (out.some(e => e.type === 'event' && e.event.type === 'abandoned')) break
      for (const e of out) if (e.type === 'timer') at = e.at
    }
    expect(now).toBe(GIVE_UP)
  })

  it('property: abandoned exactly when the requester was silent for memberGiveUpMs (other members do not count)', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ gap: fc.integer({ min: 0, max: 2 * GIVE_UP }), fromRequester: fc.boolean() }), { maxLength: 20 }),
      (steps) => {
        const { peer, id } = member()
        let now = 0
        let heard = 0
        let gone = false
        for (const step of steps) {
          now += step.gap
          // Ticks come first (the timer fires at its time), then the message arrives.
          const out = peer.tick(now)
          const reported = out.some(e => e.type === 'event' && e.event.type === 'abandoned')
          const due = !gone && now - heard >= GIVE_UP
          expect(reported).toBe(due)
          if (due) gone = true
          const from = step.fromRequester ? requester : setup.signers[2]!.peerId
          peer.receive(from, encodeCanonical({ k: 'msg', i: id, m: new Uint8Array(4) }), now)
          if (step.fromRequester && !gone) heard = now
          expect(peer.instance(id) === undefined).toBe(gone)
        }
      }
    ), { numRuns: 200, seed: 3 })
  })

  it('the requester never gives up its own instance this way (its own wait decides)', () => {
    const peer = new ConsensusPeer({ signer: setup.signers[0]!, verifier: setup.verifier, memberGiveUpMs: GIVE_UP })
    const { instance } = peer.start(setup.statement.wire, [], 0)
    expect(peer.tick(10 * GIVE_UP).some(e => e.type === 'event' && e.event.type === 'abandoned')).toBe(false)
    expect(peer.instance(instance)).toBeDefined()
  })
})
