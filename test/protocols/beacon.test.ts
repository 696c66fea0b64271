import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { encodeCanonical } from '../../protocols/cbor.ts'
import { answerBeacon, BeaconRound, type BeaconEffect } from '../../protocols/beacon/index.ts'
import { decodeRpc, encodeRpc, rpcLimits, wireDeadline, type LiveState, type RpcMessage } from '../../protocols/rpc/index.ts'

const state = (agent: string, load = 0.5): LiveState => ({ agent, load, queue: 0, latencyMs: 12, available: true })
const done = (effects: BeaconEffect[]): Extract<BeaconEffect, { type: 'done' }> | undefined =>
  effects.find((e): e is Extract<BeaconEffect, { type: 'done' }> => e.type === 'done')
const H1 = '12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp'
const H2 = '12D3KooWGRUVh8fLsHGx1UGVVHZhMBvJ7pkLqZuEEbFh9NB7PRVB'

describe('rpc messages', () => {
  it('round-trip every kind of message', () => {
    const messages: RpcMessage[] = [
      { t: 'beacon', id: 1, agents: ['calc', 'sort'] },
      { t: 'beacon-reply', id: 1, states: [state('calc')] },
      { t: 'execute', id: 2, agent: 'calc', input: { expression: '2*3', nested: [1, { a: null }] }, deadlineMs: 5000 },
      { t: 'result', id: 2, ok: true, output: { value: 6 }, confidence: 1, latencyMs: 0.4 },
      { t: 'result', id: 3, ok: false, kind: 'input', error: 'expression is empty' },
      { t: 'cancel', id: 2 }
    ]
    for (const m of messages) expect(decodeRpc(encodeRpc(m))).toEqual(m)
  })

  it('rejects malformed messages with the reason', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ t: 'beacon', id: -1, agents: ['calc'] }, /id must be an integer/],
      [{ t: 'beacon', id: 1, agents: [] }, /beacon names 1\.\.64 agents/],
      [{ t: 'beacon', id: 1, agents: Array.from({ length: 65 }, (_, i) => `a${i}`) }, /1\.\.64/],
      [{ t: 'beacon', id: 1, agents: ['../etc'] }, /beacon names/],
      [{ t: 'execute', id: 1, agent: 'calc', input: 1, deadlineMs: 0 }, /deadlineMs/],
      [{ t: 'execute', id: 1, agent: 'calc', input: 1, deadlineMs: 10, extra: true }, /unknown field "extra"/],
      [{ t: 'result', id: 1, ok: true, output: 1, confidence: 1.5, latencyMs: 1 }, /confidence/],
      [{ t: 'result', id: 1, ok: false, kind: 'oops', error: 'x' }, /unknown failure kind/],
      [{ t: 'beacon-reply', id: 1, states: [{ agent: 'calc', load: -1, queue: 0, latencyMs: 1, available: true }] }, /load/],
      [{ t: 'shout', id: 1 }, /unknown message type/]
    ]
    for (const [value, reason] of cases) expect(() => decodeRpc(encodeCanonical(value))).toThrow(reason)
    expect(() => decodeRpc(new Uint8Array(rpcLimits.maxMessageBytes + 1))).toThrow(/limit/)
    expect(() => encodeRpc({ t: 'execute', id: 1, agent: 'calc', input: 'x'.repeat(rpcLimits.maxMessageBytes), deadlineMs: 1 })).toThrow(/limit/)
  })

  it('never accepts arbitrary bytes silently: it decodes them or throws', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), bytes => {
      try {
        const m = decodeRpc(bytes)
        expect(['beacon', 'beacon-reply', 'execute', 'result', 'cancel']).toContain(m.t)
      } catch (err) {
        expect((err as Error).name).toBe('RpcError')
      }
    }), { numRuns: 2000 })
  })
})

describe('execute deadlines on the wire', () => {
  it('a remaining time with a fraction (deadline - now on a fractional clock) is sent as whole ms, never refused by the host', () => {
    const send = (deadlineMs: number): RpcMessage => decodeRpc(encodeRpc({ t: 'execute', id: 1, agent: 'calc', input: 1, deadlineMs }))
    // what the simulator used to send for a reroute: the host refused it and the call timed out unseen
    expect(() => send(10_000.000000000058)).toThrow(/deadlineMs/)
    expect(send(wireDeadline(10_000.000000000058))).toMatchObject({ deadlineMs: 10_001 })
    fc.assert(fc.property(fc.double({ noNaN: false }), ms => {
      const d = wireDeadline(ms)
      expect(Number.isSafeInteger(d) && d >= 1 && d <= rpcLimits.maxDeadlineMs).toBe(true)
      expect(send(d)).toMatchObject({ deadlineMs: d })
    }), { seed: 7, numRuns: 300 })
  })
})

describe('beacon round', () => {
  it('asks each host once about its agents and finishes when all have answered', () => {
    const round = new BeaconRound(9, [`${H1}/calc`, `${H1}/sort`, `${H2}/calc`], 150)
    const start = round.start(1000)
    const sends = start.filter(e => e.type === 'send')
    expect(sends.map(s => s.to).sort()).toEqual([H1, H2].sort())
    const toH1 = sends.find(s => s.to === H1)!
    expect(decodeRpc(toH1.data)).toEqual({ t: 'beacon', id: 9, agents: ['calc', 'sort'] })
    expect(start).toContainEqual({ type: 'timer', at: 1150 })
    expect(round.reply(H1, { t: 'beacon-reply', id: 9, states: [state('calc', 0.1), state('sort', 0.9)] })).toEqual([])
    const finished = done(round.reply(H2, { t: 'beacon-reply', id: 9, states: [state('calc', 0.3)] }))!
    expect([...finished.states.keys()].sort()).toEqual([`${H1}/calc`, `${H1}/sort`, `${H2}/calc`].sort())
    expect(finished.states.get(`${H1}/sort`)!.load).toBe(0.9)
    expect(finished.skipped).toEqual([])
  })

  it('skips hosts that miss the deadline instead of waiting for them', () => {
    const round = new BeaconRound(3, [`${H1}/calc`, `${H2}/calc`], 100)
    round.start(0)
    round.reply(H1, { t: 'beacon-reply', id: 3, states: [state('calc')] })
    const finished = done(round.tick())!
    expect([...finished.states.keys()]).toEqual([`${H1}/calc`])
    expect(finished.skipped).toEqual([`${H2}/calc`])
    // Late, duplicate, foreign and mismatched replies change nothing.
    expect(round.reply(H2, { t: 'beacon-reply', id: 3, states: [state('calc')] })).toEqual([])
    expect(round.tick()).toEqual([])
  })

  it('ignores replies to other rounds, from hosts not asked, and about agents not asked', () => {
    const round = new BeaconRound(5, [`${H1}/calc`], 100)
    round.start(0)
    expect(round.reply(H1, { t: 'beacon-reply', id: 4, states: [state('calc')] })).toEqual([])
    expect(round.reply(H2, { t: 'beacon-reply', id: 5, states: [state('calc')] })).toEqual([])
    const finished = done(round.reply(H1, { t: 'beacon-reply', id: 5, states: [state('calc'), state('spy')] }))!
    expect([...finished.states.keys()]).toEqual([`${H1}/calc`])
  })

  it('the host answers only for the agents it has', () => {
    const local = new Map([['calc', state('calc', 0.25)]])
    expect(answerBeacon({ t: 'beacon', id: 8, agents: ['calc', 'ghost'] }, n => local.get(n))).toEqual({ t: 'beacon-reply', id: 8, states: [state('calc', 0.25)] })
  })
})
