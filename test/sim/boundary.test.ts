// Message faults at the protocol boundary (sim/boundary.ts): the one fault scheduler the simulator's
// World.send and the consensus tests' committee (test/helpers/committee.ts) both run.
import { describe, it, expect } from 'vitest'
import { atBoundary, type BoundaryFault } from '../../sim/boundary.ts'
import { stream } from '../../sim/rng.ts'

describe('boundary faults', () => {
  it('act only inside their window, at their rate', () => {
    const faults: BoundaryFault[] = [{ kind: 'drop', rate: 0.25, at: 1, until: 2 }]
    const rng = stream(5, 'boundary-test')
    expect(atBoundary(faults, 999, rng)).toEqual({ copies: 1, extraMs: 0 })
    expect(atBoundary(faults, 2000, rng)).toEqual({ copies: 1, extraMs: 0 })
    let dropped = 0
    for (let i = 0; i < 4000; i++) if (atBoundary(faults, 1500, rng) === undefined) dropped++
    expect(dropped).toBeGreaterThan(850)
    expect(dropped).toBeLessThan(1150)
  })

  it('duplicate, and add a fixed delay or one drawn from a range (partial synchrony before GST)', () => {
    const rng = stream(6, 'boundary-test')
    const faults: BoundaryFault[] = [
      { kind: 'duplicate', rate: 1, at: 0, until: Infinity },
      { kind: 'delay', rate: 1, extraMs: 40, at: 0, until: 10 },
      { kind: 'delay', rate: 1, extraMs: [100, 200], at: 0, until: 10 }
    ]
    const seen = Array.from({ length: 200 }, () => atBoundary(faults, 5000, rng)!)
    expect(seen.every(f => f.copies === 2 && f.extraMs >= 140 && f.extraMs < 240)).toBe(true)
    expect(new Set(seen.map(f => Math.floor(f.extraMs / 10))).size).toBeGreaterThan(5)
    expect(atBoundary(faults, 10_000, rng)).toEqual({ copies: 2, extraMs: 0 })
  })
})
