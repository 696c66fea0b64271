/**
 * A requester node in the simulation. Its tasks run on the same driver a peer's task runner uses
 * (protocols/task/driver.ts), given the simulator's I/O: virtual time, simulated messages. The
 * routing (RoutingCore, BeaconRound) and agreement (ConsensusPeer, canaries) it does as
 * node/services/router.ts, agreement.ts and canaries.ts do, on the same shared drivers.
 *
 * It also measures: per routing decision the regret against an oracle that knows every agent's
 * true expected reward (success probability, latency and cost, weighted as the router's reward); per trusted subtask, how the mesh's aggregation, plain majority and
 * CP-WBFT's rule (complete topology, protocols/consensus/cp-wbft.ts) each decide on the same signed answers.
 */
import { BeaconRound, LATE_REPLY_WINDOW_MS, type BeaconEffect } from '../protocols/beacon/index.ts'
import { splitAgentId } from '../protocols/capability/index.ts'
import {
  aggregate, committeeBody, cpWbftVerdict, defaultAggregationConfig, defaultCanaryPolicy, effectiveConfidence, majorityVerdict, signCommittee, unit,
  type AnswerBody, type Standings, type CertificateSummary, type Verdict
} from '../protocols/consensus/index.ts'
import { encodeRpc, wireDeadline, type RpcMessage } from '../protocols/rpc/index.ts'
import { routeRequest, RoutingCore, type LiveStates, type SelectionPolicy } from '../protocols/routing/index.ts'
import { agree, CanaryDesk, driveTask, type AgreementRequest, type AgreementResult, type DrivenTask, type ExecuteCall, type ExecuteResult, type RouteAnswer, type TaskReport } from '../protocols/task/index.ts'
import { expectedReward, type Difficulty } from './agents.ts'
import { sample, type Rng } from './rng.ts'
import type { RuleName } from './metrics.ts'
import { correctValue, type SimTask } from './tasks.ts'
import type { World } from './world.ts'

/** Candidates taken from the index, as the node's router does (topK 10, cost weight 0.1). */
const TOP_K = 10
const COST_WEIGHT = 0.1
/** How long a requester waits for its committee, as node/agreement.ts does. */
const CONSENSUS_TIMEOUT_MS = 20_000
/** Peers a requester knows well enough to draw into committees. */
const NEIGHBOURS = 24
/** Spot-checks, as a node runs them by default: 5% of dispatches, every newcomer twice, and every executor of a split tally. */
const CANARIES = defaultCanaryPolicy

interface Running {
  task: SimTask
  driven: DrivenTask
  /** With NAT: whether the task's first execute call went through a relay (undefined before it). */
  relayed?: boolean
}

interface Call {
  task: number
  attempt: number
  subtask: string
  agent: string
  started: number
  /** Where the result goes: the task driver, or the canary desk. */
  done: (result: ExecuteResult, latencyMs: number) => void
}

export class Requester {
  readonly node: number
  readonly core: RoutingCore
  readonly #world: World
  readonly #rng: Rng
  readonly #neighbours: number[]
  readonly #running = new Map<number, Running>()
  /** Beacon rounds under way, and a while after (late replies): where their answers go. */
  readonly #rounds = new Map<number, { round: BeaconRound, late: (host: string, rttMs: number) => void, done: (live: LiveStates) => void }>()
  readonly #calls = new Map<number, Call>()
  /** Consensus instances this requester started, and where each one's summary goes. */
  readonly #instances = new Map<string, (summary: CertificateSummary) => void>()
  #nextRpc = 1
  #nextRound = 1
  #nextCanary = 1
  /** Spot-checks: the shared driver (protocols/task/canary-driver.ts) over simulated calls. */
  readonly #canaries: CanaryDesk
  /** Whether any agent lies or colludes (the liars' weight is scanned only then). */
  #hasLiars: boolean | undefined
  /** VCVs this requester's table accepted. */
  verified = 0

  constructor (world: World, node: number, policy: SelectionPolicy, rng: Rng, neighbourRng: Rng) {
    this.node = node
    this.#world = world
    this.#rng = rng
    const book = world.consensusPeer(node).book
    this.#canaries = this.#canaryDesk()
    this.core = new RoutingCore({ policy, reputation: agent => book.reputation(agent), suspended: agent => this.#canaries.suspects.has(agent), newcomer: agent => !book.vetted(agent) })
    this.#neighbours = sample(neighbourRng, world.net.size, NEIGHBOURS + 1).filter(n => n !== node).slice(0, NEIGHBOURS)
  }

  /** This requester's clock (sim/clock.ts): what its machines read. Metrics use true time. */
  get #now (): number { return this.#world.clocks.local(this.node, this.#world.engine.now) }

  /** Runs `f` when this requester's clock reads `at`. */
  #later (at: number, f: () => void): void { this.#world.laterOn(this.node, at, f) }

  arrive (task: SimTask): void {
    const run: Running = { task, driven: undefined! }
    run.driven = driveTask<ExecuteResult>(task.spec, {
      now: () => this.#now,
      // Virtual time has no cancelled events: the driver ignores a wake-up it no longer wants.
      timer: (at, wake) => { this.#later(at, wake); return () => {} },
      route: (subtask, request, exclude, done) => { this.#route(run, subtask, request, exclude, done) },
      execute: (call, done) => { this.#execute(run, call, done) },
      cancel: call => { this.#cancel(task.index, call) },
      agree: (subtask, request, done) => { this.#agree(run, subtask, request, done) },
      outcome: o => {
        this.core.outcome(o.agent, { ok: o.result.ok, latencyMs: o.latencyMs }, this.#now)
        if (o.result.ok) this.#canaries.check(o.agent, 'dispatch') // as node/peer.ts wires it
      },
      settle: (_subtask, agent, teach) => {
        if (teach === 'nothing') this.core.withdraw(agent)
        else this.core.outcome(agent, { ok: false, latencyMs: 0 }, this.#now)
      },
      finished: report => { this.#finished(run, report) }
    })
    this.#running.set(task.index, run)
    run.driven.start()
  }

  #execute (run: Running, call: ExecuteCall, done: (result: ExecuteResult, latencyMs: number) => void): void {
    const now = this.#now
    const id = this.#nextRpc++
    const target = splitAgentId(call.agent)
    const host = target === undefined ? undefined : this.#world.nodeOf(target.host)
    this.#calls.set(id, { task: run.task.index, attempt: call.attempt, subtask: call.subtask, agent: call.agent, started: now, done })
    const dispatched = this.#world.agentByName.get(call.agent)
    if (dispatched !== undefined && this.#world.agents[dispatched]!.behaviour === 'sybil') this.#world.metrics.sybilDispatches++
    if (dispatched !== undefined && this.#world.shocked.has(dispatched)) this.#world.metrics.shockedDispatches++
    if (host === undefined) return // an agent id naming no simulated node: the attempt times out
    const relayed = this.#world.send(this.node, host, 'rpc', encodeRpc({ t: 'execute', id, agent: target!.name, input: call.input, deadlineMs: wireDeadline(call.deadline - now), ...(call.sign !== undefined ? { sign: call.sign } : {}) }))
    run.relayed ??= relayed
  }

  #cancel (task: number, call: ExecuteCall): void {
    for (const [id, c] of this.#calls) {
      if (c.task !== task || c.attempt !== call.attempt) continue
      this.#calls.delete(id)
      const parts = splitAgentId(c.agent)
      const host = parts === undefined ? undefined : this.#world.nodeOf(parts.host)
      if (host !== undefined) this.#world.send(this.node, host, 'rpc', encodeRpc({ t: 'cancel', id }))
    }
  }

  // ---- routing: the shared loop (protocols/routing/route-driver.ts) with virtual-time beacons ----

  #route (run: Running, subtask: string, request: { text?: string, skills?: string[] }, exclude: string[], done: (answer: RouteAnswer) => void): void {
    const world = this.#world
    const table = world.table(this.node)
    routeRequest(this.core, {
      now: () => this.#now,
      random: this.#rng,
      topK: TOP_K,
      // Only what this requester's own table verified (the simulated index is shared).
      eligible: agent => table?.get(agent) !== undefined,
      index: (text, req, excluded, k, found) => {
        const vector = world.embedder.embedSync(text)
        found(keep => world.index.search({ vector, k, filter: { skills: req.skills, exclude: excluded, available: keep }, costWeight: COST_WEIGHT })
          .map(h => ({ agent: h.agent, similarity: h.similarity, cost: h.cost, latencyMs: h.record.latencyMs })))
      },
      beacon: (agents, deadlineMs, late, live) => {
        const round = new BeaconRound(this.#nextRound++, agents, deadlineMs)
        this.#rounds.set(round.id, { round, late, done: live })
        this.#beacon(round.id, round.start(this.#now))
      },
      wanted: () => this.#running.get(run.task.index) === run
    }, request, exclude, decision => {
      const chosen = decision.candidates[0]?.agent
      if (chosen !== undefined) this.#regret(run, subtask, chosen, decision.candidates.map(c => c.agent), new Set(exclude))
      done(decision)
    }, err => { throw err }) // a simulated requester's route has no I/O to fail: what throws is a bug, and stops the run
  }

  #beacon (id: number, effects: BeaconEffect[]): void {
    for (const e of effects) {
      if (e.type === 'send') {
        const host = this.#world.nodeOf(e.to)
        if (host !== undefined) this.#world.send(this.node, host, 'rpc', e.data)
      } else if (e.type === 'timer') {
        this.#later(e.at, () => { const r = this.#rounds.get(id); if (r !== undefined) this.#beacon(id, r.round.tick()) })
      } else if (e.type === 'late') {
        this.#rounds.get(id)?.late(e.host, e.rttMs)
      } else {
        const r = this.#rounds.get(id)!
        // Kept a while after it ends: a late reply still measures its host's round trip.
        this.#later(this.#now + LATE_REPLY_WINDOW_MS, () => this.#rounds.delete(id))
        r.done(e)
      }
    }
  }

  /**
   * Regret of one decision: the best expected reward among the agents it could choose (live or
   * not, minus those the task machine excluded: the ones that already failed this subtask or hold
   * one of its other slots) minus the chosen one's, split into what screening lost (the best
   * agent was not among those beaconed) and what selection lost (the policy did not pick the best
   * of those it was shown). Charging a reroute for not picking the agent that just failed would
   * add the same unavoidable amount to every policy, once per failure.
   */
  #regret (run: Running, subtask: string, chosen: string, shown: readonly string[], excluded: ReadonlySet<string>): void {
    const truth = run.task.truth.get(subtask)!
    const world = this.#world
    // An agent whose host is down earns what a call that never answers earns (at its own cost).
    const reward = (i: number | undefined): number => {
      if (i === undefined) return expectedReward({ ...world.agents[0]!, behaviour: 'sybil', cost: 0 }, truth.type, truth.difficulty)
      const a = world.agents[i]!
      return expectedReward(world.net.up[a.host] === 1 ? a : { ...a, behaviour: 'sybil' }, truth.type, truth.difficulty)
    }
    const out = new Set<number>()
    for (const a of excluded) { const i = world.agentByName.get(a); if (i !== undefined) out.add(i) }
    let best = -Infinity
    for (let i = 0; i < world.agents.length; i++) if (!out.has(i)) best = Math.max(best, reward(i))
    let bestShown = -Infinity
    for (const a of shown) bestShown = Math.max(bestShown, reward(world.agentByName.get(a)))
    const c = world.agentByName.get(chosen)
    const got = reward(c)
    world.metrics.decision(best - got, best - bestShown, c !== undefined && world.agents[c]!.type === truth.type && world.agents[c]!.behaviour !== 'sybil', world.engine.now)
  }

  // ---- replies -----------------------------------------------------------------------------

  rpc (from: number, m: RpcMessage): void {
    if (m.t === 'beacon-reply') {
      const r = this.#rounds.get(m.id)
      if (r !== undefined) this.#beacon(m.id, r.round.reply(this.#world.signer(from).peerId, m, this.#now))
      return
    }
    if (m.t !== 'result') return
    const call = this.#calls.get(m.id)
    if (call === undefined) return // cancelled or timed out already
    this.#calls.delete(m.id)
    call.done(m, this.#now - call.started) // the task driver (what it teaches, the task machine) or the canary desk
  }

  // ---- spot-checks: the shared driver (protocols/task/canary-driver.ts) over simulated calls ----

  #canaryDesk (): CanaryDesk {
    const world = this.#world
    return new CanaryDesk({
      policy: CANARIES,
      book: world.consensusPeer(this.node).book,
      now: () => this.#now,
      later: (at, f) => { this.#later(at, f) },
      random: this.#rng,
      // A known-answer input of the agent's own kind; the agent cannot tell it from real work.
      question: agent => {
        const a = world.agentByName.get(agent)
        const parts = splitAgentId(agent)
        if (a === undefined || parts === undefined || world.nodeOf(parts.host) === undefined) return undefined
        const type = world.agents[a]!.type
        const x = 1_000_000 + Math.floor(this.#rng() * 1_000_000)
        return { input: { x, k: type, d: 'easy' }, answer: { value: correctValue(type, x) } }
      },
      ask: (agent, input, deadlineMs, done) => {
        const parts = splitAgentId(agent)!
        const id = this.#nextRpc++
        this.#calls.set(id, { task: -1, attempt: -1, subtask: '', agent, started: this.#now, done })
        world.send(this.node, world.nodeOf(parts.host)!, 'rpc', encodeRpc({ t: 'execute', id, agent: parts.name, input, deadlineMs }))
        return () => { this.#calls.delete(id) }
      },
      id: () => `canary-${this.node}-${this.#nextCanary++}`,
      judged: () => { world.metrics.canaries++ }
    })
  }

  /** The book as tallies read it: suspended agents at 0; without learned calibration if the scenario says so. */
  #standings (cleared = false): Standings {
    const book = this.#world.consensusPeer(this.node).book
    const view = cleared ? book : this.#canaries.suspects.view(book)
    if (this.#world.scenario.consensus.calibration) return view
    return { standing: a => { const { calibration: _, ...s } = view.standing(a); return s }, hostReputation: h => view.hostReputation(h) }
  }

  /** `next`, unless the task ended while its agreement waited for canaries. */
  #ifRunning (run: Running, next: () => void): () => void {
    return () => { if (this.#running.get(run.task.index) === run) next() }
  }

  // ---- trusted subtasks: the shared agreement driver (protocols/task/agreement-driver.ts) ------

  #agree (run: Running, subtask: string, request: AgreementRequest, done: (result: AgreementResult) => void): void {
    const world = this.#world
    const peer = world.consensusPeer(this.node)
    const signer = world.signer(this.node)
    agree(request, {
      standings: () => this.#standings(),
      cleared: this.#standings(true),
      suspended: agent => this.#canaries.suspects.has(agent),
      // Executors without a judged canary get one; the tally waits until all are judged.
      qualify: (executors, next) => { this.#canaries.qualify(executors, this.#ifRunning(run, next)) },
      retest: (agents, next) => { this.#canaries.retest(agents, this.#ifRunning(run, next)) },
      dissent: agents => { this.#canaries.dissent(agents) },
      ready: bodies => { this.#compareRules(run, subtask, bodies) },
      // Peers the requester can reach now, as a node draws from its live connections.
      candidates: () => this.#neighbours.filter(n => world.net.reachable(this.node, n)).map(n => world.signer(n).peerId),
      committee: (o, standings) => signCommittee(committeeBody({ ...o, requester: signer.peerId }, standings), signer),
      run: (statement, wires, committed, fail) => {
        const now = this.#now
        let started: ReturnType<typeof peer.start>
        try {
          started = peer.start(statement.wire, wires, now)
        } catch (err) {
          world.metrics.consensus.refused++ // a full instance table
          return fail((err as Error).message)
        }
        const { instance, effects } = started
        world.metrics.consensus.instances++
        const members = statement.body.members
        const byzantine = members.filter(m => world.byzantine.has(world.nodeOf(m.id) ?? -1)).reduce((sum, m) => sum + m.power, 0)
        if (3 * byzantine >= members.reduce((sum, m) => sum + m.power, 0)) {
          world.overThreshold.add(instance)
          world.metrics.consensus.overThreshold++
        }
        this.#instances.set(instance, summary => {
          world.metrics.consensus.committed++
          if (!world.overThreshold.has(instance)) world.metrics.consensus.committedUnderThreshold++
          if (summary.outcome.kind !== 'answer') world.metrics.consensus.escalatedByCommittee++
          committed(summary)
        })
        this.#later(now + CONSENSUS_TIMEOUT_MS, () => {
          if (!this.#instances.delete(instance)) return
          peer.abandon(instance)
          world.metrics.consensus.timeouts++
          fail(`the committee did not commit within ${CONSENSUS_TIMEOUT_MS} ms`)
        })
        world.runConsensus(this.node, effects)
      },
      agreed: (agent, agreed) => { this.core.agreement(agent, agreed, this.#now) },
      committed: agreed => { this.#canaries.noteAgreement(agreed) }
    }, done)
  }

  /** The committee committed (this requester is a member). */
  committed (instance: string, summary: CertificateSummary): void {
    const to = this.#instances.get(instance)
    if (to === undefined) return
    this.#instances.delete(instance)
    to(summary)
  }

  /** The three aggregation rules on the same signed answers, scored against the ground truth. */
  #compareRules (run: Running, subtask: string, bodies: AnswerBody[]): void {
    const truth = run.task.truth.get(subtask)!
    const rule = { kind: 'json' } as const
    const book = this.#standings()
    const verdicts: Array<[RuleName, Verdict]> = [
      ['mesh', aggregate(bodies, rule, a => book.standing(a))],
      ['majority', majorityVerdict(bodies, rule)],
      ['cp-wbft', cpWbftVerdict(bodies, rule)]
    ]
    const share = this.#liarShare(book)
    if (share !== undefined) this.#world.metrics.liarShare(share)
    for (const [name, v] of verdicts) {
      if (v.kind !== 'decided') this.#world.metrics.rule(name, 'escalated')
      else this.#world.metrics.rule(name, (v.value as { value?: unknown } | null)?.value === truth.value ? 'correct' : 'wrong')
    }
  }

  /**
   * The liars' share of the mesh rule's weight over every agent, each at the confidence it claims
   * (liars and colluders 1.0 or their set claim, honest agents their quality): their voting power
   * if all answered. Sleepers count as liars once awake. A world without liars skips the scan (a
   * tally's hot path in scale-10k).
   */
  #liarShare (book: Standings): number | undefined {
    this.#hasLiars ??= this.#world.agents.some(a => a.behaviour === 'liar' || a.behaviour === 'colluder')
    if (!this.#hasLiars) return 0
    let liars = 0
    let total = 0
    for (const [name, i] of this.#world.agentByName) {
      const a = this.#world.agents[i]!
      if (a.behaviour === 'sybil') continue
      const lying = a.behaviour === 'liar' || (a.behaviour === 'colluder' && (a.calls ?? 0) >= (a.sleepCalls ?? 0))
      const st = book.standing(name)
      const w = unit(st.reputation) * effectiveConfidence(lying ? (a.confidence ?? 1) : a.quality, st.accuracy, defaultAggregationConfig, st.calibration)
      total += w
      if (lying) liars += w
    }
    return total > 0 ? liars / total : undefined
  }

  #finished (run: Running, { status, reason, outputs, trace }: TaskReport): void {
    this.#running.delete(run.task.index)
    const accurate = status === 'done' && [...run.task.truth].every(([id, t]) => (outputs[id] as { value?: unknown } | undefined)?.value === t.value)
    const reroutes = trace.filter(e => e.kind === 'reroute').length
    this.#world.metrics.tasks.push({ index: run.task.index, arrivedAt: run.task.at, finishedAt: this.#world.engine.now, status, accurate, reroutes, ...(reason !== undefined ? { reason } : {}), ...(run.relayed === true ? { relayed: true } : {}) })
    this.#world.finished++
  }

  /** Tasks still running at the end of the run. */
  unfinished (): SimTask[] {
    return [...this.#running.values()].map(r => r.task)
  }
}

export type { Difficulty }
