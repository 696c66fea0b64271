// Each simulated node runs on its own clock (sim/clock.ts): timers never fire early in the node's
// own reading, and the table's rule against records "issued in the future" meets real skew.
import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { Clocks } from '../../sim/clock.ts'
import { runOnce } from '../../sim/run.ts'
import { parseScenario } from '../../sim/scenario.ts'

describe('simulated clocks', () => {
  it('a timer set for a node\'s reading fires at the first virtual time the node reads it', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 0, max: 200_000 }), fc.integer({ min: 0, max: 2000 }), fc.double({ min: 0, max: 1e7, noNaN: true }), (seed, offsetMs, driftPpm, t) => {
      const clocks = new Clocks(3, { offsetMs, driftPpm }, seed)
      for (let node = 0; node < 3; node++) {
        const at = clocks.local(node, t) + 1234.5
        const v = clocks.virtual(node, at)
        expect(clocks.local(node, v)).toBeGreaterThanOrEqual(at)
        expect(clocks.local(node, v - Math.max(1e-9, v * 1e-12))).toBeLessThan(at)
      }
    }), { seed: 15, numRuns: 300 })
  })

  it('nodes differ within the spread; no spread is virtual time itself', () => {
    const clocks = new Clocks(50, { offsetMs: 100, driftPpm: 50 }, 7)
    const skews = Array.from({ length: 50 }, (_, n) => clocks.local(n, 0)) // how far ahead each reads at t = 0
    expect(Math.min(...skews)).toBeGreaterThanOrEqual(0)
    expect(Math.max(...skews)).toBeLessThanOrEqual(100)
    expect(new Set(skews).size).toBeGreaterThan(10)
    const rates = Array.from({ length: 50 }, (_, n) => clocks.local(n, 1e6) - clocks.local(n, 0))
    expect(Math.min(...rates)).toBeGreaterThanOrEqual(1e6 - 50)
    expect(Math.max(...rates)).toBeLessThanOrEqual(1e6 + 50)
    const exact = new Clocks(5, { offsetMs: 0, driftPpm: 0 }, 7)
    expect([exact.local(3, 1234.5678), exact.virtual(3, 1234.5678)]).toEqual([1234.5678, 1234.5678])
  })

  it('hosts whose clocks run ahead past the table\'s allowance have their records ignored, counted; the run stays safe', () => {
    const scenario = (offsetMs: number) => parseScenario({ name: 'skew', seed: 3, nodes: 30, durationS: 60, tasks: { count: 40, requesters: 2, trusted: 0.3 }, clocks: { offsetMs, driftPpm: 200 } })
    const near = runOnce(scenario(1000), 'linucb').summary
    const far = runOnce(scenario(150_000), 'linucb').summary
    expect(near.futureRecords).toBe(0)
    // Offsets up to 150 s against a 60 s allowance: the hosts ahead of a requester by more are refused by it.
    expect(far.futureRecords).toBeGreaterThan(0)
    expect([far.safetyViolations, near.safetyViolations]).toEqual([0, 0])
    expect(far.done + far.escalated + far.dropped).toBe(40)
  })
})
