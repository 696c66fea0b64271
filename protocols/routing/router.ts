/**
 * The router's decisions, without I/O: which screened agents to beacon, which one to dispatch to
 * and in what order the others follow, which hosts sit out screening after missing a beacon, and
 * which decision an outcome or a late agreement belongs to. The node drives it with its HNSW
 * index and libp2p beacons; the simulator with its own index and virtual-time beacons.
 *
 * @example
 * ```ts
 * const core = new RoutingCore({ policy: createPolicy('linucb') })
 * const hits = index.search({ vector, k: 10, filter: { available: a => core.available(a, now) } })
 * const screened = core.shortlist(hits, rng)             // what to beacon
 * const agents = screened.map(h => h.agent)
 * const live = await beacon(agents, core.beaconDeadline(agents))   // { states, skipped, rtts }
 * const { candidates, explanation } = core.decide(screened, live.states, live.skipped, rng, now, live.rtts, core.taskType(hits))
 * core.outcome(candidates[0].agent, { ok: true, latencyMs: 40 }, now)   // the bandit learns
 * core.agreement(candidates[0].agent, true, now)                        // consensus, later
 * ```
 */
import { splitAgentId } from '../capability/schema.ts'
import type { Candidate } from '../task/index.ts'
import type { CandidateState } from './context.ts'
import type { SelectionPolicy } from './policy.ts'

/** One agent the index screened for a request. */
export interface ScreenHit {
  agent: string
  similarity: number
  cost: number
  /** The advertised latency: scores an agent not beaconed yet. */
  latencyMs?: number
}

/** What a host's beacon reply says of one agent. */
export interface BeaconState {
  load: number
  latencyMs: number
  available: boolean
}

export interface RoutingCoreInit {
  policy: SelectionPolicy
  /** Screened agents beaconed and scored (default 3). */
  topL?: number
  /** Screened agents keep at least this share of the best match's similarity (default 0.6). */
  relativeSimilarity?: number
  /** How long a host that missed a beacon is left out of screening (default 10 s). */
  silentMs?: number
  /**
   * Beacon deadlines adapt to each host's measured round trip (2 × RTT + 25 ms), within
   * [beaconDeadlineMs, maxBeaconDeadlineMs] (defaults 150 and 1000 ms); a host never measured
   * gets `unknownBeaconDeadlineMs` (default 600). A fixed deadline misses every host farther
   * away than half of it: on a WAN that is every other region.
   */
  beaconDeadlineMs?: number
  maxBeaconDeadlineMs?: number
  unknownBeaconDeadlineMs?: number
  /** Earned reputation in 0..1 (the consensus book); 0.5 for everyone without one. A policy feature. */
  reputation?: (agent: string) => number
  /**
   * True while an agent is suspended (its latest canary failed, see protocols/consensus/canary.ts
   * `Suspects`). A suspended agent, or one at reputation 0, is a last resort (see `#checkedFirst`);
   * suspension is a gate, not a feature: the policy keeps scoring it on its earned reputation,
   * so a slip cleared a minute later does not teach the bandit a context it will not see again.
   */
  suspended?: (agent: string) => boolean
  /**
   * True for an agent that has passed no independent check yet (no canary or good
   * feedback); its host is a newcomer too until it answers a beacon. Policy screening gives such newcomers at most `maxNewcomers` of the L slots
   * (default 1) and any one host at most `maxPerHost` (default 1), as long as others are near
   * enough to take them: thousands of fresh Sybil agents, or one host's near-duplicates, cannot
   * crowd out agents that have earned their place. Slots nobody else can fill still go to them.
   */
  newcomer?: (agent: string) => boolean
  maxNewcomers?: number
  maxPerHost?: number
  /** A routing decision whose dispatch has not reported by then is forgotten (default 10 min). */
  pendingTtlMs?: number
  /**
   * Starts every dispatch id this core makes (default none). A driver whose policy state outlives
   * the process passes one drawn at start, so ids never repeat across restarts: a restarted peer
   * counting from `d1` again met its saved bandit still holding `d1` as pending.
   */
  dispatchPrefix?: string
  /** A learned dispatch: persist the policy. */
  onLearned?: () => void
  /**
   * How the top L are chosen from the screened agents: `similarity` (Symphony-Coord: the L most
   * similar) or `policy` (the policy's own scores, with each agent's last beaconed state, so an
   * agent it learned is good, or has not tried yet, is beaconed even when a cheaper or closer
   * match ranks above it). Default: `policy` for LinUCB, `similarity` for the baselines without
   * a screening rule of their own (Symphony-Coord's selector applies its own, whatever this says).
   */
  screen?: 'similarity' | 'policy'
}

export interface RouteDecision {
  /** Best first: the policy's choice, then the other answering candidates by expected reward (the policy's mean). */
  candidates: Candidate[]
  /** Why: screened agents, skipped hosts, scores, the choice, or the reason there is none. */
  explanation: Record<string, unknown>
}

/** Latency credited to an attempt that never answered. */
const NO_ANSWER_MS = 60_000
/** Agents whose last beaconed state is remembered for screening. */
const LAST_SEEN = 10_000
/** Hosts whose round trip is remembered. */
const RTT_HOSTS = 10_000
/** Latency assumed for an agent never beaconed that advertises none. */
const UNKNOWN_LATENCY_MS = 1000

export class RoutingCore {
  readonly #init: RoutingCoreInit
  /** Per agent, the decisions awaiting an outcome, oldest first. */
  readonly #pending = new Map<string, Array<{ id: string, at: number, cost: number }>>()
  /** Dispatch ids whose answer arrived, per agent: consensus may later say whether they agreed. */
  readonly #answered = new Map<string, string[]>()
  /** Hosts that missed a beacon deadline, until when they are left out of screening. */
  readonly #silent = new Map<string, number>()
  /** Each agent's last beaconed state (bounded, oldest forgotten first). */
  readonly #lastSeen = new Map<string, BeaconState>()
  /** Per agent, the last decision it was a fallback in: its scored state, until it is dispatched or the entry expires. */
  readonly #fallbacks = new Map<string, { at: number, candidate: CandidateState, taskType: string }>()
  /** Smoothed beacon round trip per host (ms). */
  readonly #rtt = new Map<string, number>()
  #next = 1

  constructor (init: RoutingCoreInit) {
    this.#init = init
  }

  get policy (): SelectionPolicy { return this.#init.policy }

  /** False while the agent's host sits out screening for a missed beacon. */
  available (agent: string, now: number): boolean {
    return this.#silent.size === 0 || (this.#silent.get(hostOf(agent)) ?? 0) <= now
  }

  /**
   * Whether the drivers should also query the index for established agents only: screening tells
   * newcomers apart and fewer than L of the nearest hits are established (else they suffice).
   */
  wantsEstablished (nearest: readonly ScreenHit[]): boolean {
    if (this.#init.newcomer === undefined) return false
    let established = 0
    for (const h of nearest) if (!this.isNewcomer(h.agent) && ++established >= (this.#init.topL ?? 3)) return false
    return true
  }

  /** An agent that has passed no check, of a host that has never answered our beacon. */
  isNewcomer (agent: string): boolean {
    return (this.#init.newcomer?.(agent) ?? false) && !this.#rtt.has(hostOf(agent))
  }

  /**
   * Screening's two index queries merged: the nearest agents, and the nearest established ones
   * (no newcomers). Thousands of near-identical fresh agents can fill the nearest k by themselves;
   * the second query keeps established agents in view. Unchanged when it adds nobody.
   */
  mergeScreens (nearest: readonly ScreenHit[], established: readonly ScreenHit[]): ScreenHit[] {
    const seen = new Set(nearest.map(h => h.agent))
    const added = established.filter(h => !seen.has(h.agent))
    if (added.length === 0) return [...nearest]
    return [...nearest, ...added].sort((a, b) => b.similarity - a.similarity)
  }

  /** The screened agents worth a beacon: the top L of those near the best match. */
  shortlist (hits: readonly ScreenHit[], rng: () => number): ScreenHit[] {
    const policy = this.#init.policy
    // A policy with its own screening rule (Symphony-Coord's) applies it as published.
    const own = hits.length === 0 ? undefined : policy.screen(hits.map(h => this.#candidate(h, this.#remembered(h))), { taskType: this.taskType(hits) })
    if (own !== undefined) return own.map(i => hits[i]!)
    // Far weaker matches are other kinds of agent: as fallbacks they would only fail on the input.
    const floor = (hits[0]?.similarity ?? 0) * (this.#init.relativeSimilarity ?? 0.6)
    const near = hits.filter(h => h.similarity >= floor)
    const topL = this.#init.topL ?? 3
    if (near.length <= topL || (this.#init.screen ?? (policy.name === 'linucb' ? 'policy' : 'similarity')) === 'similarity') return this.#checkedFirst(near, h => h.agent).slice(0, topL)
    // A preview records nothing: the policy only ranks here.
    const { scores } = policy.preview(near.map(h => this.#candidate(h, this.#remembered(h))), { taskType: this.taskType(hits) }, rng)
    const score = new Map(scores.map(s => [s.agent, s.score]))
    const ranked = this.#checkedFirst([...near].sort((a, b) => (score.get(b.agent) ?? -Infinity) - (score.get(a.agent) ?? -Infinity)), h => h.agent)
    return this.#spread(ranked, topL)
  }

  /**
   * An agent that failed its checks (suspended after a confident canary failure, or at reputation
   * 0) comes after every other agent whatever the bandit's exploration bonus says: a last resort.
   * Its answer carries no weight in a tally, so a slot given to it is a slot an answer that counts
   * could have had. Stable: the order within each part is kept. A policy with a screening rule of
   * its own (Symphony-Coord's) runs as published, without this rule.
   */
  #checkedFirst<T> (items: T[], agentOf: (item: T) => string): T[] {
    const { usable, lastResorts } = this.#split(items, agentOf)
    return [...usable, ...lastResorts]
  }

  /** `items` in good standing, and the last resorts (none when the rule is off, or when nobody is in good standing). */
  #split<T> (items: T[], agentOf: (item: T) => string): { usable: T[], lastResorts: T[] } {
    if (this.#init.policy.name === 'symphony') return { usable: items, lastResorts: [] }
    const { suspended, reputation } = this.#init
    const usable: T[] = []
    const lastResorts: T[] = []
    for (const item of items) {
      const a = agentOf(item)
      if (suspended?.(a) === true || (reputation !== undefined && reputation(a) <= 0)) lastResorts.push(item)
      else usable.push(item)
    }
    if (lastResorts.length === 0 || usable.length === 0) return { usable: items, lastResorts: [] }
    return { usable, lastResorts }
  }

  /** The first L of `ranked` within the newcomer and per-host caps; slots left over go to the rest, in rank order. */
  #spread (ranked: readonly ScreenHit[], topL: number): ScreenHit[] {
    // A host that has answered one of our beacons has shown it is there; only agents of hosts that
    // never did, and that passed no check, count as newcomers (fresh Sybil keys never answer).
    const maxNewcomers = this.#init.maxNewcomers ?? 1
    const maxPerHost = this.#init.maxPerHost ?? 1
    const picked: ScreenHit[] = []
    const rest: ScreenHit[] = []
    const perHost = new Map<string, number>()
    let newcomers = 0
    for (const h of ranked) {
      const host = hostOf(h.agent)
      const fresh = this.isNewcomer(h.agent)
      if (picked.length < topL && (perHost.get(host) ?? 0) < maxPerHost && (!fresh || newcomers < maxNewcomers)) {
        picked.push(h)
        perHost.set(host, (perHost.get(host) ?? 0) + 1)
        if (fresh) newcomers++
      } else {
        rest.push(h)
      }
    }
    return [...picked, ...rest].slice(0, topL)
  }

  /**
   * The task-type feature of a request: the local name of its best match in screening (`calc`,
   * `sort`, …). Shortlisting and deciding must use the same one, so it comes from the index's
   * ranking, never from the policy's.
   */
  taskType (hits: readonly ScreenHit[]): string {
    return hits.length === 0 ? '' : taskTypeOf(hits[0]!.agent)
  }

  /**
   * What `decide` would pick for these screened hits if every shortlisted agent answered its
   * beacon as it last did (or as it advertises, never beaconed), changing nothing: no beacon, no
   * pending dispatch, no remembered state. For showing the user what routing would do, and why.
   */
  preview (hits: readonly ScreenHit[], rng: () => number, taskType = this.taskType(hits)): RouteDecision {
    const policy = this.#init.policy
    if (hits.length === 0) return { candidates: [], explanation: { policy: policy.name, screened: [], reason: 'no agent matches' } }
    const shortlisted = this.shortlist(hits, rng)
    const candidates = shortlisted.map(h => this.#candidate(h, this.#remembered(h)))
    const { usable: pool, lastResorts } = this.#split(candidates, c => c.agent)
    const selection = policy.preview(pool, { taskType }, rng)
    const order = fallbackOrder(selection, pool, lastResorts.map(c => c.agent))
    const cost = new Map(hits.map(h => [h.agent, h.cost]))
    return {
      candidates: order.map(agent => ({ agent, cost: cost.get(agent) ?? 0 })),
      explanation: {
        policy: policy.name,
        taskType,
        screened: hits.map(h => ({ agent: h.agent, similarity: round(h.similarity), cost: h.cost, shortlisted: shortlisted.includes(h) })),
        // The state each shortlisted agent was scored with: its last beacon reply, or its advert.
        states: candidates.map(c => ({ agent: c.agent, from: this.#lastSeen.has(c.agent) ? 'last beacon' : 'advert', load: c.load, latencyMs: c.latencyMs, reputation: round(c.reputation), available: c.available })),
        scores: selection.scores.map(s => ({ agent: s.agent, mean: round(s.mean), bonus: round(s.bonus), score: round(s.score) })),
        chosen: selection.chosen
      }
    }
  }

  /** An agent's last beaconed state, or what its advert says (never beaconed). */
  #remembered (h: ScreenHit): BeaconState {
    return this.#lastSeen.get(h.agent) ?? { load: 0, latencyMs: h.latencyMs ?? UNKNOWN_LATENCY_MS, available: true }
  }

  #candidate (h: ScreenHit, s: BeaconState): CandidateState {
    return { agent: h.agent, similarity: Math.max(0, h.similarity), load: s.load, latencyMs: s.latencyMs, cost: h.cost, reputation: this.#init.reputation?.(h.agent) ?? 0.5, available: s.available }
  }

  /**
   * A measured round trip to a host (a beacon reply, on time or late): smoothed, it sets later
   * deadlines. A host that answered is alive: it no longer sits out screening.
   */
  observeRtt (host: string, ms: number): void {
    this.#silent.delete(host)
    const before = this.#rtt.get(host)
    this.#rtt.delete(host)
    this.#rtt.set(host, before === undefined ? ms : 0.75 * before + 0.25 * ms)
    if (this.#rtt.size > RTT_HOSTS) this.#rtt.delete(this.#rtt.keys().next().value!)
  }

  /** How long to wait for the beacon to these agents' hosts: long enough for the farthest one measured. */
  beaconDeadline (agents: readonly string[]): number {
    const min = this.#init.beaconDeadlineMs ?? 150
    const max = this.#init.maxBeaconDeadlineMs ?? 1000
    let want = 0
    for (const agent of agents) {
      const rtt = this.#rtt.get(hostOf(agent))
      want = Math.max(want, rtt === undefined ? (this.#init.unknownBeaconDeadlineMs ?? 600) : 2 * rtt + 25)
    }
    return Math.min(max, Math.max(min, want))
  }

  /**
   * The beacon's answers are in: pick one, order the rest, and remember the decision. `rtts`
   * (per host, ms) tunes later deadlines; `taskType` is `taskType(hits)` of the screening.
   */
  decide (screened: readonly ScreenHit[], states: ReadonlyMap<string, BeaconState>, skipped: readonly string[], rng: () => number, now: number, rtts?: ReadonlyMap<string, number>, taskType = this.taskType(screened)): RouteDecision {
    const policy = this.#init.policy
    for (const [host, ms] of rtts ?? []) this.observeRtt(host, ms)
    if (screened.length === 0) return { candidates: [], explanation: { policy: policy.name, screened: [], reason: 'no agent matches' } }
    // A host that missed the deadline sits out screening for a while instead of costing every route a timeout.
    for (const agent of skipped) this.#silent.set(hostOf(agent), now + (this.#init.silentMs ?? 10_000))
    const candidates: CandidateState[] = screened.flatMap(h => {
      const s = states.get(h.agent)
      if (s === undefined) return []
      this.#lastSeen.delete(h.agent)
      this.#lastSeen.set(h.agent, { load: s.load, latencyMs: s.latencyMs, available: s.available })
      if (this.#lastSeen.size > LAST_SEEN) this.#lastSeen.delete(this.#lastSeen.keys().next().value!)
      return [this.#candidate(h, s)]
    })
    const explanation: Record<string, unknown> = {
      policy: policy.name,
      screened: screened.map(h => ({ agent: h.agent, similarity: round(h.similarity), cost: h.cost })),
      skipped: [...skipped]
    }
    if (candidates.length === 0) return { candidates: [], explanation: { ...explanation, reason: 'no screened agent answered the beacon in time' } }
    const id = `${this.#init.dispatchPrefix ?? ''}d${this.#next++}`
    // The policy chooses among agents in good standing; those that failed their checks follow as last resorts.
    const { usable: pool, lastResorts: failed } = this.#split(candidates, c => c.agent)
    const selection = policy.select(pool, { taskType }, rng, { id, now })
    // A choice that was never dispatched (the task ended first) must not absorb a later outcome.
    const ttl = this.#init.pendingTtlMs ?? 10 * 60_000
    const waiting = (this.#pending.get(selection.chosen) ?? []).filter(p => now - p.at < ttl)
    waiting.push({ id, at: now, cost: screened.find(h => h.agent === selection.chosen)?.cost ?? 0 })
    this.#pending.set(selection.chosen, waiting)
    // A fallback dispatched later teaches the policy in the state it was scored in.
    for (const c of candidates) {
      if (c.agent === selection.chosen) continue
      this.#fallbacks.delete(c.agent)
      this.#fallbacks.set(c.agent, { at: now, candidate: c, taskType })
      if (this.#fallbacks.size > LAST_SEEN) this.#fallbacks.delete(this.#fallbacks.keys().next().value!)
    }
    const lastResorts = failed.map(c => c.agent)
    const order = fallbackOrder(selection, pool, lastResorts)
    const cost = new Map(screened.map(h => [h.agent, h.cost]))
    return {
      candidates: order.map(agent => ({ agent, cost: cost.get(agent) ?? 0 })),
      explanation: { ...explanation, scores: selection.scores.map(s => ({ agent: s.agent, mean: round(s.mean), bonus: round(s.bonus), score: round(s.score) })), chosen: selection.chosen, ...(lastResorts.length > 0 ? { lastResorts } : {}) }
    }
  }

  /**
   * An attempt on `agent` ended (latency Infinity: it never answered). The bandit learns from the
   * dispatch it chose, and from a fallback (or a redundant copy) further down the list in the
   * state that agent was scored in at the decision: an agent that only ever serves as a fallback
   * would otherwise keep its place there however often it fails. (Symphony-Coord's orchestrator
   * likewise updates its model from every run, not only the chosen one.)
   */
  outcome (agent: string, result: { ok: boolean, latencyMs: number }, now: number): void {
    const latencyMs = Number.isFinite(result.latencyMs) ? result.latencyMs : NO_ANSWER_MS
    const waiting = this.#pending.get(agent)
    const decision = waiting?.shift()
    if (decision === undefined) {
      const fallback = this.#fallbacks.get(agent)
      if (fallback === undefined || now - fallback.at >= (this.#init.pendingTtlMs ?? 10 * 60_000)) return
      this.#fallbacks.delete(agent)
      const learned = this.#init.policy.observe(fallback.candidate, { taskType: fallback.taskType }, { success: result.ok, latencyMs, cost: fallback.candidate.cost })
      if (learned.status === 'learned') this.#init.onLearned?.()
      return
    }
    if (waiting!.length === 0) this.#pending.delete(agent)
    const learned = this.#init.policy.feedback(decision.id, { success: result.ok, latencyMs, cost: decision.cost }, now)
    if (learned.status === 'learned') this.#init.onLearned?.()
    if (result.ok) {
      const answered = this.#answered.get(agent) ?? []
      answered.push(decision.id)
      if (answered.length > 16) answered.shift()
      this.#answered.set(agent, answered)
    }
  }

  /**
   * The latest decision that chose `agent` (or used it as a fallback) teaches nothing: the
   * requester's input did not fit the agent, or the agent rightly said the input was wrong.
   */
  withdraw (agent: string): void {
    const waiting = this.#pending.get(agent)
    const fallback = this.#fallbacks.get(agent)
    // Whichever role the agent had in its latest decision: a fallback there is not another task's choice.
    if (fallback !== undefined && (waiting === undefined || fallback.at >= waiting[waiting.length - 1]!.at)) {
      this.#fallbacks.delete(agent)
      return
    }
    const decision = waiting?.pop()
    if (decision === undefined) return
    if (waiting!.length === 0) this.#pending.delete(agent)
    this.#init.policy.withdraw(decision.id, "the requester's input was at fault")
  }

  /** Consensus committed a result: the agent's latest answered dispatch agreed with it, or not. */
  agreement (agent: string, agreed: boolean, now: number): void {
    const id = this.#answered.get(agent)?.pop()
    if (id === undefined) return
    const learned = this.#init.policy.feedback(id, { agreement: agreed ? 1 : 0 }, now)
    if (learned.status === 'learned') this.#init.onLearned?.()
  }
}

/**
 * The chosen agent, then the rest of the pool by expected reward (the mean), not by the
 * exploration bonus: an agent that just started failing is uncertain again, not good again. Last
 * resorts follow, in their own order.
 */
function fallbackOrder (selection: { chosen: string, scores: ReadonlyArray<{ agent: string, mean: number }> }, pool: readonly CandidateState[], lastResorts: readonly string[]): string[] {
  const meanOf = new Map(selection.scores.map(s => [s.agent, s.mean]))
  const rest = pool.map(c => c.agent).filter(a => a !== selection.chosen).sort((a, b) => (meanOf.get(b) ?? -Infinity) - (meanOf.get(a) ?? -Infinity))
  return [selection.chosen, ...rest, ...lastResorts]
}

/** The host part of an agent id (the whole id when it has none); no allocation beyond the slice, as screening calls it per index candidate. */
function hostOf (agent: string): string {
  const slash = agent.indexOf('/')
  return slash < 0 ? agent : agent.slice(0, slash)
}

/** The task-type feature: the local name of the best match (`calc`, `sort`, …). */
function taskTypeOf (agent: string): string {
  return splitAgentId(agent)?.name ?? agent
}

function round (x: number): number {
  return Math.round(x * 1000) / 1000
}
