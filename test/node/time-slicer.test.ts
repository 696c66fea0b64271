import { describe, expect, it } from 'vitest'
import { TimeSlicer } from '../../node/services/time-slicer.ts'

describe('TimeSlicer', () => {
  it('runs every job in order, in slices: the event loop turns between slices of a long burst', async () => {
    let now = 0
    // Each job "takes" 1 ms of the slicer's clock: 10 jobs fill a 10 ms slice.
    const slicer = new TimeSlicer({ sliceMs: 10, clock: () => now })
    const order: number[] = []
    // One look per event-loop iteration (a setImmediate re-armed from its own callback runs in the
    // next iteration, as the slicer's next slice does): what had run by then.
    const looks: number[] = []
    let finished = false
    const look = (): void => { looks.push(order.length); if (!finished) setImmediate(look) }
    setImmediate(look)
    const results = await Promise.all(Array.from({ length: 200 }, async (_, i) => await slicer.run('a', () => { now += 1; order.push(i); return i * 2 }, () => -1)))
    finished = true
    expect(results).toEqual(Array.from({ length: 200 }, (_, i) => i * 2))
    expect(order).toEqual(Array.from({ length: 200 }, (_, i) => i))
    // The loop turned mid-burst (I/O gets its poll phase there), about once per 10-job slice.
    const partial = looks.filter(n => n > 0 && n < 200)
    expect(partial.length).toBeGreaterThanOrEqual(10)
    for (const n of partial) expect(n % 10).toBe(0)
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

  it('counts a job by its weight: heavy jobs fill a source\'s share sooner, light ones still fit beside them', async () => {
    const slicer = new TimeSlicer({ sliceMs: 10, maxQueued: 100, maxPerSource: 20, clock: () => 0 })
    // 16-unit jobs (a 256 KiB bundle at 16 KiB a unit): one fits a share of 20, a second does not.
    const heavy = await Promise.all([0, 1, 2].map(async () => await slicer.run('rogue', () => 'ran', cause => `refused: ${cause}`, 16)))
    expect(heavy).toEqual(['ran', 'refused: source', 'refused: source'])
    // Light jobs of the same source still fit beside one heavy one, up to the share.
    const fresh = new TimeSlicer({ sliceMs: 10, maxQueued: 100, maxPerSource: 20, clock: () => 0 })
    const mixed = await Promise.all([
      fresh.run('rogue', () => 'ran', () => 'refused', 16),
      ...Array.from({ length: 6 }, async () => await fresh.run('rogue', () => 'ran', () => 'refused'))
    ])
    expect(mixed.filter(r => r === 'ran')).toHaveLength(5)
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
