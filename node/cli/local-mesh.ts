/** Helpers for meshes of peers on one machine: `agentmesh up`, tests and benchmarks build them alike. */
import type { Peer } from '../peer.ts'

/**
 * Whom peer i of n dials: peers at distances 1, b, b², … around a ring (b = `base`, default 2).
 * Every peer gets about 2·log_b(n) connections and any two are at most log_b(n) hops apart, with
 * no hub. `agentmesh up` uses base 3 past 8 peers: each link costs ~30 ms of CPU to set up on a
 * loaded machine, and 20 peers converged in 4.7-4.9 s with base 3 against 5.4-6.1 s with base 2.
 */
export function ringTargets (i: number, n: number, base = 2): number[] {
  const targets = new Set<number>()
  for (let d = 1; d < n; d *= base) targets.add((i + d) % n)
  targets.delete(i)
  return [...targets]
}

/** Dials the ring; throws if any dial fails. */
export async function connectRing (peers: Peer[]): Promise<void> {
  await Promise.all(peers.map(async (p, i) => {
    const failures = await p.dial(ringTargets(i, peers.length).map(j => peers[j]!.multiaddrs()[0]!))
    if (failures.length > 0) throw new Error(`peer ${i} could not dial: ${failures.map(f => `${f.addr}: ${f.error}`).join('; ')}`)
  }))
}

/** Resolves when `check` holds, re-checked on every table change of any peer; rejects after `timeoutMs`. */
export function untilTables (peers: Peer[], check: () => boolean, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const events = ['agent:added', 'agent:updated', 'agent:removed'] as const
    const recheck = (): void => { if (check()) { done(); resolve() } }
    const timer = setTimeout(() => { done(); reject(new Error(`condition not met within ${timeoutMs} ms`)) }, timeoutMs)
    const done = (): void => {
      clearTimeout(timer)
      for (const p of peers) for (const e of events) p.capability.removeEventListener(e, recheck)
    }
    for (const p of peers) for (const e of events) p.capability.addEventListener(e, recheck)
    recheck()
  })
}
