// The ring `agentmesh up` dials: connected, few links, short paths, for any size and base.
import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { ringTargets } from '../../node/cli/local-mesh.ts'

describe('ringTargets', () => {
  it('links any n peers into one graph with about 2·log_b(n) links each and paths of at most ⌈log_b(n)⌉·(b-1) hops', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 200 }), fc.constantFrom(2, 3), (n, base) => {
      const links = Array.from({ length: n }, () => new Set<number>())
      for (let i = 0; i < n; i++) {
        const targets = ringTargets(i, n, base)
        expect(targets).not.toContain(i)
        expect(targets.length).toBeLessThanOrEqual(Math.ceil(Math.log(n) / Math.log(base)))
        for (const j of targets) { links[i]!.add(j); links[j]!.add(i) }
      }
      // Breadth-first from peer 0: everyone reachable, within the bound (greedy digits in base b).
      const hops = new Array<number>(n).fill(-1)
      hops[0] = 0
      const queue = [0]
      for (let k = 0; k < queue.length; k++) for (const j of links[queue[k]!]!) if (hops[j] === -1) { hops[j] = hops[queue[k]!]! + 1; queue.push(j) }
      expect(hops.every(h => h >= 0)).toBe(true)
      expect(Math.max(...hops)).toBeLessThanOrEqual(Math.max(0, Math.ceil(Math.log(n) / Math.log(base))) * (base - 1))
    }), { seed: 5, numRuns: 300 })
  })
})
