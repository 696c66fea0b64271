/**
 * The mesh router: semantic screening in the HNSW index, a beacon to the top-L candidates' hosts,
 * and selection by a bandit policy that learns from every dispatch's outcome.
 *
 * @example
 * ```ts
 * const router = new MeshRouter({ index, embedder, policy: createPolicy('linucb'), beacon: (a, ms) => peer.rpc.beacon(a, ms), table })
 * const { candidates, explanation } = await router.route({ text: 'what is 17 times 23' }, [])
 * router.outcome({ subtask, agent: candidates[0].agent, result, latencyMs })   // the bandit learns
 * ```
 */
import { toString } from 'uint8arrays'
import type { CapabilityIndex, Embedder } from '../capability-index/index.ts'
import type { SignedVcv } from '../protocols/capability/index.ts'
import type { CandidateState, SelectionPolicy } from '../protocols/routing/index.ts'
import type { CapabilityRequest } from '../protocols/task/index.ts'
import type { BeaconResult } from './rpc-service.ts'
import type { DispatchOutcome, RouteAnswer, Router } from './task-runner.ts'

export interface MeshRouterInit {
  index: CapabilityIndex
  embedder: Embedder
  policy: SelectionPolicy
  beacon: (agents: string[], deadlineMs: number) => Promise<BeaconResult>
  /** The verified VCVs: skills-only requests and costs come from here. */
  table: { agents: () => SignedVcv[] }
  /** Candidates taken from the index (default 10) and beaconed (default 3). */
  topK?: number
  topL?: number
  beaconDeadlineMs?: number
  /** Cost re-rank weight in the index search (default 0.1). */
  costWeight?: number
  /** Earned reputation in 0..1 (the consensus book); 0.5 for everyone without one. */
  reputation?: (agent: string) => number
  /** Screened agents keep at least this share of the best match's similarity (default 0.6). */
  relativeSimilarity?: number
  /** How long a host that missed a beacon is left out of screening (default 10 s). */
  silentMs?: number
  /** A learned dispatch: persist the policy. */
  onLearned?: () => void
  random?: () => number
  now?: () => number
}

/** A routing decision whose dispatch has not reported by then is forgotten. */
const PENDING_TTL_MS = 10 * 60_000

/** Latency credited to an attempt that never answered. */
const NO_ANSWER_MS = 60_000

export class MeshRouter implements Router {
  readonly #init: MeshRouterInit
  /** Per agent, the decisions awaiting an outcome, oldest first. */
  readonly #pending = new Map<string, Array<{ id: string, at: number, cost: number }>>()
  /** Dispatch ids whose answer arrived, per agent: consensus may later say whether they agreed. */
  readonly #answered = new Map<string, string[]>()
  /** Hosts that missed a beacon deadline, until when they are left out of screening. */
  readonly #silent = new Map<string, number>()
  #next = 1

  constructor (init: MeshRouterInit) {
    this.#init = init
  }

  get policy (): SelectionPolicy { return this.#init.policy }

  async route (request: CapabilityRequest, exclude: string[]): Promise<RouteAnswer> {
    const { topK = 10, topL = 3, beaconDeadlineMs = 150 } = this.#init
    const hits = await this.#screen(request, new Set(exclude), topK)
    // Far weaker matches are other kinds of agent: as fallbacks they would only fail on the input.
    const floor = (hits[0]?.similarity ?? 0) * (this.#init.relativeSimilarity ?? 0.6)
    const screened = hits.filter(h => h.similarity >= floor).slice(0, topL)
    if (screened.length === 0) return { candidates: [], explanation: { policy: this.#init.policy.name, screened: [], reason: 'no agent matches' } }
    const live = await this.#init.beacon(screened.map(h => h.agent), beaconDeadlineMs)
    // A host that missed the deadline sits out screening for a while instead of costing every route a timeout.
    for (const agent of live.skipped) this.#silent.set(agent.slice(0, agent.indexOf('/')), this.#now() + (this.#init.silentMs ?? 10_000))
    const states: CandidateState[] = screened.flatMap(h => {
      const s = live.states.get(h.agent)
      if (s === undefined) return []
      return [{ agent: h.agent, similarity: Math.max(0, h.similarity), load: s.load, latencyMs: s.latencyMs, cost: h.cost, reputation: this.#init.reputation?.(h.agent) ?? 0.5, available: s.available }]
    })
    const explanation: Record<string, unknown> = {
      policy: this.#init.policy.name,
      screened: screened.map(h => ({ agent: h.agent, similarity: round(h.similarity), cost: h.cost })),
      skipped: live.skipped
    }
    if (states.length === 0) return { candidates: [], explanation: { ...explanation, reason: 'no screened agent answered the beacon in time' } }
    const id = `d${this.#next++}`
    const selection = this.#init.policy.select(states, { taskType: screened[0]!.agent.split('/')[1] }, this.#init.random ?? Math.random, { id, now: this.#now() })
    // A choice that was never dispatched (the task ended first) must not absorb a later outcome.
    const now = this.#now()
    const waiting = (this.#pending.get(selection.chosen) ?? []).filter(p => now - p.at < PENDING_TTL_MS)
    waiting.push({ id, at: now, cost: screened.find(h => h.agent === selection.chosen)?.cost ?? 0 })
    this.#pending.set(selection.chosen, waiting)
    const scoreOf = new Map(selection.scores.map(s => [s.agent, s.score]))
    const order = [selection.chosen, ...states.map(s => s.agent).filter(a => a !== selection.chosen).sort((a, b) => (scoreOf.get(b) ?? -Infinity) - (scoreOf.get(a) ?? -Infinity))]
    const cost = new Map(screened.map(h => [h.agent, h.cost]))
    return {
      candidates: order.map(agent => ({ agent, cost: cost.get(agent) ?? 0 })),
      explanation: { ...explanation, scores: selection.scores.map(s => ({ agent: s.agent, mean: round(s.mean), bonus: round(s.bonus), score: round(s.score) })), chosen: selection.chosen }
    }
  }

  /** The bandit learns from the dispatch it chose; fallbacks further down the list were not its choice. */
  outcome (o: DispatchOutcome): void {
    const waiting = this.#pending.get(o.agent)
    const decision = waiting?.shift()
    if (decision === undefined) return
    if (waiting!.length === 0) this.#pending.delete(o.agent)
    const latencyMs = Number.isFinite(o.latencyMs) ? o.latencyMs : NO_ANSWER_MS
    const result = this.#init.policy.feedback(decision.id, { success: o.result.ok, latencyMs, cost: decision.cost }, this.#now())
    if (result.status === 'learned') this.#init.onLearned?.()
    if (o.result.ok) {
      const answered = this.#answered.get(o.agent) ?? []
      answered.push(decision.id)
      if (answered.length > 16) answered.shift()
      this.#answered.set(o.agent, answered)
    }
  }

  /** Consensus committed a result: the agent's latest answered dispatch agreed with it, or not. */
  agreement (agent: string, agreed: boolean): void {
    const id = this.#answered.get(agent)?.pop()
    if (id === undefined) return
    const result = this.#init.policy.feedback(id, { agreement: agreed ? 1 : 0 }, this.#now())
    if (result.status === 'learned') this.#init.onLearned?.()
  }

  /** Nearest agents to the request text (skills filtered inside the search), or by skills alone. */
  async #screen (request: CapabilityRequest, exclude: ReadonlySet<string>, k: number): Promise<Array<{ agent: string, similarity: number, cost: number }>> {
    const now = this.#now()
    const available = (agent: string): boolean => (this.#silent.get(agent.slice(0, agent.indexOf('/'))) ?? 0) <= now
    if (request.text !== undefined) {
      const [vector] = await this.#init.embedder.embed([request.text])
      return this.#init.index.search({
        vector: vector!,
        k,
        filter: { skills: request.skills, policy: request.policy, schemaHash: request.schemaHash, exclude, available },
        costWeight: this.#init.costWeight ?? 0.1
      })
    }
    const wanted = (request.skills ?? []).map(s => s.toLowerCase())
    return this.#init.table.agents()
      .filter(v => !exclude.has(v.body.agent) && available(v.body.agent) &&
        wanted.every(w => v.body.skills.some(s => s.toLowerCase() === w)) &&
        (request.policy ?? []).every(p => v.body.policy.includes(p)) &&
        (request.schemaHash === undefined || toString(v.body.schemaHash, 'base16') === request.schemaHash))
      .map(v => ({ agent: v.body.agent, similarity: 1, cost: v.body.cost }))
      .sort((a, b) => a.cost - b.cost || a.agent.localeCompare(b.agent))
      .slice(0, k)
  }

  #now (): number { return (this.#init.now ?? Date.now)() }
}

function round (x: number): number {
  return Math.round(x * 1000) / 1000
}
