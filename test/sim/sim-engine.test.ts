import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { EventQueue } from '../../sim/event-queue.ts'

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

  it('keeps (time, insertion) order through growth, shrinking and width changes in a hold pattern (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 1, max: 3000 }), fc.double({ min: 0.001, max: 1000, noNaN: true }), (seed, n, scale) => {
      let x = seed
      const rand = (): number => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x / 2 ** 32 }
      const q = new EventQueue(4)
      const reference: Array<{ t: number, id: number }> = []
      let id = 0
      let now = 0
      // The reference stays sorted by (time, id): binary insertion after every equal time.
      const push = (t: number): void => {
        q.push(t, 1, id, 0)
        let lo = 0
        let hi = reference.length
        while (lo < hi) { const mid = (lo + hi) >> 1; if (reference[mid]!.t <= t) lo = mid + 1; else hi = mid }
        reference.splice(lo, 0, { t, id: id++ })
      }
      // Grow with spread-out times (some equal), then hold, then drain.
      for (let i = 0; i < n; i++) push(Math.floor(rand() * 8) === 0 ? now : now + -Math.log(1 - rand()) * scale)
      const expect1 = (): void => {
        const want = reference.shift()!
        now = q.pop()
        expect([now, q.a]).toEqual([want.t, want.id])
      }
      for (let i = 0; i < 2 * n; i++) { expect1(); push(now + -Math.log(1 - rand()) * scale * (i % 7 === 0 ? 100 : 1)) }
      while (q.size > 0) expect1()
      expect(reference).toEqual([])
    }), { numRuns: 60 })
  })

  it('an event on a bucket border is not skipped for a year (a rounding case review found)', () => {
    const q = new EventQueue(4)
    const times = [0, 0.1, 0.2, 0.3, 0.4, 9.0, 9.3, 9.4] // width 3 × 0.1 = 0.30000000000000004; 31 × width === 9.3
    times.forEach((t, i) => q.push(t, 0, i, 0))
    const popped: number[] = []
    while (q.size > 0) popped.push(q.pop())
    expect(popped).toEqual(times)
  })

  it('stays fast when a dense front is followed by sparse times, and with thousands of equal times', () => {
    const q = new EventQueue(16)
    for (let i = 0; i < 1100; i++) q.push(i * 0.001, 0, i, 0) // a width fitted to this…
    for (let i = 0; i < 64_000; i++) q.push(2 + i * 1000, 0, i, 0) // …would scan a year per pop here
    for (let i = 0; i < 20_000; i++) q.push(5, 1, i, 0) // one time, 20k events: appended, not walked
    let last = -1
    let order = -1
    while (q.size > 0) {
      const t = q.pop()
      expect(t).toBeGreaterThanOrEqual(last)
      if (t === 5 && q.kind === 1) { expect(q.a).toBe(order + 1); order = q.a }
      last = t
    }
    expect(order).toBe(19_999)
  })

  it('refuses times that are negative, NaN or infinite, and popping when empty', () => {
    const q = new EventQueue()
    expect(() => q.push(-1, 0, 0, 0)).toThrow(/finite and >= 0/)
    expect(() => q.push(Number.NaN, 0, 0, 0)).toThrow(/finite and >= 0/)
    expect(() => q.push(Infinity, 0, 0, 0)).toThrow(/finite and >= 0/)
    expect(() => q.push(1, 256, 0, 0)).toThrow(/kind must be 0..255/)
    expect(() => q.pop()).toThrow(/empty/)
    expect(q.peekTime()).toBe(Infinity)
  })
})
