import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { EventQueue } from '../sim/event-queue.ts'

describe('simulator event queue', () => {
  it('pops in (time, insertion) order whatever the push order, through growth and interleaving (property)', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.boolean()), { maxLength: 3000 }), ops => {
      const q = new EventQueue(4)
      const reference: Array<{ t: number, seq: number }> = []
      const popped: number[] = []
      let seq = 0
      for (const [t, popNow] of ops) {
        q.push(t, 7, seq, -seq - 1)
        reference.push({ t, seq: seq++ })
        if (popNow) {
          reference.sort((x, y) => x.t - y.t || x.seq - y.seq)
          const want = reference.shift()!
          expect(q.pop()).toBe(want.t)
          expect([q.kind, q.a, q.b]).toEqual([7, want.seq, -want.seq - 1])
          popped.push(want.seq)
        }
      }
      reference.sort((x, y) => x.t - y.t || x.seq - y.seq)
      for (const want of reference) {
        expect(q.pop()).toBe(want.t)
        expect(q.a).toBe(want.seq)
      }
      expect(q.size).toBe(0)
    }), { numRuns: 200 })
  })

  it('refuses times that are negative, NaN or infinite, and popping when empty', () => {
    const q = new EventQueue()
    expect(() => q.push(-1, 0, 0, 0)).toThrow(/finite and >= 0/)
    expect(() => q.push(Number.NaN, 0, 0, 0)).toThrow(/finite and >= 0/)
    expect(() => q.push(Infinity, 0, 0, 0)).toThrow(/finite and >= 0/)
    expect(() => q.pop()).toThrow(/empty/)
    expect(q.peekTime()).toBe(Infinity)
  })
})
