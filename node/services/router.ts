/**
 * The mesh router: semantic screening in the HNSW index, a beacon to the top-L candidates' hosts,
 * and selection by a bandit policy that learns from every dispatch's outcome. The decisions are
 * protocols/routing's `RoutingCore` and the loop around them its `routeRequest` (the simulator
 * runs the same two); this file gives them the peer's I/O: embedder, index, table, beacon RPC.
 *
 * @example
 * ```ts
 * const router = new MeshRouter({ index, embedder, policy: createPolicy('linucb'), beacon: (a, ms) => peer.rpc.beacon(a, ms), table })
 * const { candidates, explanation } = await router.route({ text: 'what is 17 times 23' }, [])
 * router.outcome({ subtask, agent: candidates[0].agent, result, latencyMs })   // the bandit learns
 * ```
 */
import { randomBytes } from 'node:crypto'
import { toString } from 'uint8arrays'
import type { CapabilityIndex, Embedder } from '../../capability-index/index.ts'
import { splitAgentId, type SignedVcv } from '../../protocols/capability/index.ts'
import { routeRequest, RoutingCore, screen, type RouteIo, type ScreenHit, type SelectionPolicy } from '../../protocols/routing/index.ts'
import type { CapabilityRequest } from '../../protocols/task/index.ts'
import type { BeaconResult } from './rpc-service.ts'
import type { DispatchOutcome, RouteAnswer, Router } from './task-runner.ts'

export interface MeshRouterInit {
  index: CapabilityIndex
  embedder: Embedder
  policy: SelectionPolicy
  beacon: (agents: string[], deadlineMs: number, onLate?: (host: string, rttMs: number) => void) => Promise<BeaconResult>
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
  /** True while the agent's latest canary failed: routed last (protocols/routing/router.ts `suspended`). */
  suspended?: (agent: string) => boolean
  /** An agent that has passed no check yet: screening caps newcomers' share of the top L. */
  newcomer?: (agent: string) => boolean
  /** Hosts this peer refuses to talk to (banned for misbehaving): their agents are never screened. */
  refused?: (host: string) => boolean
  /** Screened agents keep at least this share of the best match's similarity (default 0.6). */
  relativeSimilarity?: number
  /** How long a host that missed a beacon is left out of screening (default 10 s). */
  silentMs?: number
  /** A learned dispatch: persist the policy. */
  onLearned?: () => void
  random?: () => number
  now?: () => number
}

export class MeshRouter implements Router {
  readonly #init: MeshRouterInit
  readonly #core: RoutingCore
  /** The I/O of the shared routing loop (protocols/routing/route-driver.ts). */
  readonly #io: RouteIo

  constructor (init: MeshRouterInit) {
    this.#init = init
    this.#core = new RoutingCore({
      policy: init.policy,
      topL: init.topL,
      relativeSimilarity: init.relativeSimilarity,
      silentMs: init.silentMs,
      beaconDeadlineMs: init.beaconDeadlineMs,
      reputation: init.reputation,
      suspended: init.suspended,
      newcomer: init.newcomer,
      onLearned: init.onLearned,
      // The bandit's pending dispatches are saved with it: a new run must not reuse their ids.
      dispatchPrefix: `${randomBytes(4).toString('hex')}-`
    })
    const refused = init.refused
    this.#io = {
      now: () => this.#now(),
      random: init.random ?? Math.random,
      topK: init.topK ?? 10,
      ...(refused === undefined ? {} : { eligible: (agent: string) => !refused(splitAgentId(agent)?.host ?? '') }),
      index: (text, request, exclude, k, done, fail) => {
        init.embedder.embed([text]).then(([vector]) => {
          done(keep => init.index.search({
            vector: vector!,
            k,
            filter: { skills: request.skills, policy: request.policy, schemaHash: request.schemaHash, exclude, available: keep },
            costWeight: init.costWeight ?? 0.1
          }).map(h => ({ agent: h.agent, similarity: h.similarity, cost: h.cost, latencyMs: h.record.latencyMs })))
        }, fail)
      },
      bySkills: (request, exclude, keep, k) => {
        const wanted = (request.skills ?? []).map(s => s.toLowerCase())
        return init.table.agents()
          .filter(v => !exclude.has(v.body.agent) && keep(v.body.agent) &&
            wanted.every(w => v.body.skills.some(s => s.toLowerCase() === w)) &&
            (request.policy ?? []).every(p => v.body.policy.includes(p)) &&
            (request.schemaHash === undefined || toString(v.body.schemaHash, 'base16') === request.schemaHash))
          .map(v => ({ agent: v.body.agent, similarity: 1, cost: v.body.cost, latencyMs: v.body.latencyMs }))
          .sort((a, b) => a.cost - b.cost || a.agent.localeCompare(b.agent))
          .slice(0, k)
      },
      beacon: (agents, ms, late, done, fail) => {
        if (agents.length === 0) return done({ states: new Map(), skipped: [] })
        init.beacon(agents, ms, late).then(done, fail)
      }
    }
  }

  get policy (): SelectionPolicy { return this.#init.policy }

  async route (request: CapabilityRequest, exclude: string[]): Promise<RouteAnswer> {
    return await new Promise((resolve, reject) => { routeRequest(this.#core, this.#io, request, exclude, resolve, reject) })
  }

  /**
   * What `route` would pick for this request and why, without dispatching: the index screens, the
   * policy scores with each agent's last known state, and nothing is beaconed, recorded or learned.
   */
  async preview (request: CapabilityRequest): Promise<RouteAnswer> {
    const hits = await new Promise<ScreenHit[]>((resolve, reject) => { screen(this.#core, this.#io, request, new Set(), resolve, reject) })
    // Never the router's own (possibly seeded) random stream: a preview must not shift later choices.
    return this.#core.preview(hits, Math.random, this.#core.taskType(hits))
  }

  /** The bandit learns from the dispatch it chose; fallbacks further down the list were not its choice. */
  outcome (o: DispatchOutcome): void {
    this.#core.outcome(o.agent, { ok: o.result.ok, latencyMs: o.latencyMs }, this.#now())
  }

  /** The requester's input was at fault (teach nothing), or the agent's input-error report was false (a failure). */
  settle (_subtask: string, agent: string, teach: 'nothing' | 'failure'): void {
    if (teach === 'nothing') this.#core.withdraw(agent)
    else this.#core.outcome(agent, { ok: false, latencyMs: 0 }, this.#now())
  }

  /** Consensus committed a result: the agent's latest answered dispatch agreed with it, or not. */
  agreement (agent: string, agreed: boolean): void {
    this.#core.agreement(agent, agreed, this.#now())
  }

  #now (): number { return (this.#init.now ?? Date.now)() }
}
