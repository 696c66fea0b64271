/**
 * Message faults at the protocol boundary, decided per message: in its window (`at` to `until`,
 * seconds of virtual time) each fault hits a message with its `rate`: a drop loses it, a
 * duplicate sends it twice, a delay adds `extraMs` (fixed, or drawn uniformly from a range). The
 * simulator's `World.send` applies them on top of the modelled network; the consensus tests'
 * committee (test/helpers/committee.ts) builds partial synchrony from them (drops and long delays
 * before a global stabilisation time), so both run one fault scheduler.
 */
import type { Rng } from './rng.ts'
import type { Fault } from './scenario.ts'

export type BoundaryFault =
  | Extract<Fault, { kind: 'drop' | 'duplicate' }>
  | (Omit<Extract<Fault, { kind: 'delay' }>, 'extraMs'> & { extraMs: number | readonly [number, number] })

export function isBoundaryFault (f: Fault): f is Extract<Fault, { kind: 'drop' | 'duplicate' | 'delay' }> {
  return f.kind === 'drop' || f.kind === 'duplicate' || f.kind === 'delay'
}

/** What the boundary does to one message sent at `nowMs`: undefined when dropped, else its copies and extra delay. */
export function atBoundary (faults: readonly BoundaryFault[], nowMs: number, rng: Rng): { copies: 1 | 2, extraMs: number } | undefined {
  let extraMs = 0
  let copies: 1 | 2 = 1
  for (const f of faults) {
    if (nowMs < f.at * 1000 || nowMs >= f.until * 1000) continue
    if (!(rng() < f.rate)) continue
    if (f.kind === 'drop') return undefined
    if (f.kind === 'duplicate') copies = 2
    else extraMs += typeof f.extraMs === 'number' ? f.extraMs : f.extraMs[0] + rng() * (f.extraMs[1] - f.extraMs[0])
  }
  return { copies, extraMs }
}
