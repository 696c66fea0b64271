import { describe, expect, it } from 'vitest'
import { TimeSlicer } from '../node/services/time-slicer.ts'

describe('TimeSlicer', () => {
  it('runs every job in order, in slices: a timer set during a long burst fires before the burst ends', async () => {
    let now = 0
    // Each job "takes" 1 ms of the slicer's clock: 10 jobs fill a 10 ms slice.
    const slicer = new TimeSlicer({ sliceMs: 10, clock: () => now })
    const order: number[] = []
    let doneWhenTimerFired = -1
    setTimeout(() => { doneWhenTimerFired = order.length }, 0)
    const results = await Promise.all(Array.from({ length: 200 }, async (_, i) => await slicer.run('a', () => { now += 1; order.push(i); return i * 2 }, () => -1)))
    expect(results).toEqual(Array.from({ length: 200 }, (_, i) => i * 2))
    expect(order).toEqual(Array.from({ length: 200 }, (_, i) => i))
    // The event loop turned between slices: the timer saw a partial burst.
    expect(doneWhenTimerFired).toBeGreaterThanOrEqual(0)
    expect(doneWhenTimerFired).toBeLessThan(200)
  })

  it('refuses past the queue bound and past one source\'s share, without blocking other sources', async () => {
    const slicer = new TimeSlicer({ sliceMs: 10, maxQueued: 50, maxPerSource: 20, clock: () => 0 })
    const flood = Array.from({ length: 30 }, async () => await slicer.run('rogue', () => 'ran', cause => `refused: ${cause}`))
    const honest = Array.from({ length: 10 }, async () => await slicer.run('honest', () => 'ran', () => 'refused'))
    const rogue = await Promise.all(flood)
    expect(rogue.filter(r => r === 'refused: source')).toHaveLength(10)
    expect(await Promise.all(honest)).toEqual(Array(10).fill('ran'))
    // A fresh burst from many sources: the whole queue holds 50.
    const fresh = new TimeSlicer({ sliceMs: 10, maxQueued: 50, maxPerSource: 20, clock: () => 0 })
    const many = await Promise.all(Array.from({ length: 80 }, async (_, i) => await fresh.run(`s${i % 8}`, () => 'ran', cause => `refused: ${cause}`)))
    expect(many.filter(r => r === 'ran')).toHaveLength(50)
    expect(many.filter(r => r === 'refused: queue')).toHaveLength(30)
    expect(fresh.queued).toBe(0)
  })

  it('a job that throws rejects its own call only', async () => {
    const slicer = new TimeSlicer()
    const bad = slicer.run('a', () => { throw new Error('boom') }, () => 0)
    const good = slicer.run('a', () => 1, () => 0)
    await expect(bad).rejects.toThrow('boom')
    expect(await good).toBe(1)
  })
})
