/**
 * Puts a scenario's faults into a run: crashes, churn, partitions and shocks are scheduled in
 * virtual time, Byzantine committee members chosen. Agent behaviours (wrong answers, liars,
 * colluders, sybils) belong to the population (population.ts); message faults at the protocol
 * boundary (drop, duplicate, delay) act in `World.send` (boundary.ts).
 */
import { between, sample, type Rng } from './rng.ts'
import type { Fault } from './scenario.ts'
import type { World } from './world.ts'

export function scheduleFaults (world: World, faults: readonly Fault[], rng: Rng): void {
  /** Nodes that may go down: not requesters (they are the measured clients). */
  const mortal = [...Array(world.net.size).keys()].filter(n => !world.requesters.has(n))
  for (const f of faults) {
    switch (f.kind) {
      case 'crash': {
        const victims = sample(rng, mortal.length, Math.round(f.fraction * mortal.length)).map(i => mortal[i]!)
        world.later(f.at * 1000, () => { for (const n of victims) world.crash(n) })
        if (f.recoverAt !== undefined) world.later(f.recoverAt * 1000, () => { for (const n of victims) world.recover(n) })
        break
      }
      case 'churn': {
        // Departures as a Poisson process over the run; each node comes back after its down time.
        const end = world.scenario.durationS * 1000
        const ratePerMs = f.perMinute / 60_000
        if (ratePerMs <= 0 || mortal.length === 0) break
        for (let t = -Math.log(1 - rng()) / ratePerMs; t < end; t += -Math.log(1 - rng()) / ratePerMs) {
          const node = mortal[Math.floor(rng() * mortal.length)]!
          const down = between(rng, f.downS) * 1000
          world.later(t, () => { if (world.net.up[node] === 1) { world.crash(node); world.later(world.engine.now + down, () => world.recover(node)) } })
        }
        break
      }
      case 'partition':
        world.later(f.at * 1000, () => world.net.partition(f.groups, rng))
        world.later(f.healAt * 1000, () => world.heal())
        break
      case 'shock': {
        const ofType = world.agents.filter(a => a.type === f.type && a.behaviour !== 'sybil')
        const n = Math.round(f.share * ofType.length)
        const hit = f.pick === 'best'
          ? [...ofType].sort((a, b) => b.quality - a.quality || a.index - b.index).slice(0, n)
          : sample(rng, ofType.length, n).map(i => ofType[i]!)
        world.later(f.at * 1000, () => {
          for (const a of hit) {
            if (f.effect === 'unavailable') a.available = false
            else if (f.effect === 'fail') a.failing = true
            else a.quality = Math.min(a.quality, f.quality)
            world.shocked.add(a.index)
          }
        })
        break
      }
      case 'byzantine-members':
        for (const i of sample(rng, mortal.length, Math.round(f.fraction * mortal.length))) world.byzantine.set(mortal[i]!, f.behaviour)
        break
      default:
        break // agent behaviours: population.ts; drop/duplicate/delay: boundary.ts, in World.send
    }
  }
}
