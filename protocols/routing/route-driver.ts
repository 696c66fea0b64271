/**
 * One routing decision, written once: screen the index, beacon the shortlist's hosts, decide. The
 * decisions are the RoutingCore's; this is the loop around them, parameterised by its I/O (the way
 * protocols/task/driver.ts is). A peer plugs in its embedder, HNSW index and beacon RPC
 * (node/services/router.ts); the simulator its shared index and modelled messages
 * (sim/requester.ts). Callbacks, not promises, so the simulator stays synchronous.
 *
 * @example
 * ```ts
 * routeRequest(core, { now, random, index, beacon }, { text: 'what is 17 times 23' }, [], answer => dispatch(answer.candidates[0]), err => log(err))
 * ```
 */
import type { BeaconState, RouteDecision, RoutingCore, ScreenHit } from './router.ts'

/** What a request asks of its agents, as far as screening reads it (a subtask's capability request). */
export interface ScreenRequest {
  text?: string
  skills?: string[]
  policy?: string[]
  schemaHash?: string
}

/** Nearest agents to the request among those `keep` admits (best first). */
export type IndexSearch = (keep: (agent: string) => boolean) => ScreenHit[]

/** A beacon round's answer: live state per agent, hosts that did not answer in time, round trips per host. */
export interface LiveStates {
  states: ReadonlyMap<string, BeaconState>
  skipped: readonly string[]
  rtts?: ReadonlyMap<string, number>
}

export interface RouteIo {
  now: () => number
  random: () => number
  /** Candidates taken from the index (the node's default is 10). */
  topK: number
  /** Whether an agent may be screened at all here (verified by this requester, host not banned); the core's own gate is checked too. */
  eligible?: (agent: string) => boolean
  /** Prepares a search for the request's text (embedding may take time) and hands it to `done`. */
  index: (text: string, request: ScreenRequest, exclude: ReadonlySet<string>, k: number, done: (search: IndexSearch) => void, fail: (err: Error) => void) => void
  /** A request without text: agents by skills, policy and schema alone (absent: nobody). */
  bySkills?: (request: ScreenRequest, exclude: ReadonlySet<string>, keep: (agent: string) => boolean, k: number) => ScreenHit[]
  /** Asks the agents' hosts for live state (an empty list answers at once); replies after the deadline go to `late`. */
  beacon: (agents: string[], deadlineMs: number, late: (host: string, rttMs: number) => void, done: (live: LiveStates) => void, fail: (err: Error) => void) => void
  /** Whether the answer is still wanted when the beacon ends (a task may end meanwhile): if not, nothing is decided or recorded. */
  wanted?: () => boolean
}

/** The screened agents for a request: the nearest, plus the nearest established ones when newcomers crowd them. */
export function screen (core: RoutingCore, io: RouteIo, request: ScreenRequest, exclude: ReadonlySet<string>, done: (hits: ScreenHit[]) => void, fail: (err: Error) => void): void {
  const now = io.now()
  const keep = (agent: string): boolean => core.available(agent, now) && (io.eligible?.(agent) ?? true)
  if (request.text === undefined) return done(io.bySkills?.(request, exclude, keep, io.topK) ?? [])
  io.index(request.text, request, exclude, io.topK, search => {
    let hits: ScreenHit[]
    try {
      const nearest = search(keep)
      hits = core.wantsEstablished(nearest) ? core.mergeScreens(nearest, search(a => keep(a) && !core.isNewcomer(a))) : nearest
    } catch (err) {
      return fail(err as Error) // after an await in the peer: a throw here would be an unhandled rejection
    }
    done(hits)
  }, fail)
}

/**
 * Screens, beacons the shortlist and decides; `done` gets the candidates (best first) and why,
 * `fail` an I/O error or what the core threw: exactly one of them is called, or neither when the
 * answer is no longer wanted.
 */
export function routeRequest (core: RoutingCore, io: RouteIo, request: ScreenRequest, exclude: readonly string[], done: (decision: RouteDecision) => void, fail: (err: Error) => void): void {
  screen(core, io, request, new Set(exclude), hits => {
    let screened: ScreenHit[], agents: string[], taskType: string, deadlineMs: number
    try {
      screened = core.shortlist(hits, io.random)
      agents = screened.map(h => h.agent)
      taskType = core.taskType(hits)
      deadlineMs = core.beaconDeadline(agents)
    } catch (err) {
      return fail(err as Error)
    }
    io.beacon(agents, deadlineMs, (host, ms) => { core.observeRtt(host, ms) }, live => {
      if (io.wanted?.() === false) return
      let decision: RouteDecision
      try {
        decision = core.decide(screened, live.states, live.skipped, io.random, io.now(), live.rtts, taskType)
      } catch (err) {
        return fail(err as Error) // a policy that cannot score (say, a non-finite feature) fails this route, not the peer
      }
      done(decision)
    }, fail)
  }, fail)
}
