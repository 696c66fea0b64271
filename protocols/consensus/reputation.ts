/**
 * The reputation book: what this peer has learned about agents, as numbers two peers agree on.
 *
 * Reputation is a pure function of per-agent counts, and counts only ever add up, so a book
 * depends on the *set* of facts it saw, never on their order; each fact carries an id and a
 * fact whose id was seen is ignored, so duplicates change nothing. Ids must identify the fact's
 * content (e.g. a certificate's hash): a reused id with other content is ignored too.
 *
 * Both numbers are Beta-style means over pseudo-counts, so they stay in 0..1 and move the obvious
 * way with each kind of evidence:
 *
 *   reputation = (priorGood + Σ wᵢ·goodᵢ) / (priorGood + priorBad + Σ wᵢ·goodᵢ + Σ wⱼ·badⱼ)
 *                × (equivocationFactor if the host double-signed, else 1)
 *   accuracy   = (priorGood + Σ wᵢ·rightᵢ) / (priorGood + priorBad + Σ wᵢ·rightᵢ + Σ wⱼ·wrongⱼ)
 *
 * Reputation is deliberately asymmetric (bad evidence weighs several times good evidence, and a
 * strong prior keeps newcomers low); accuracy is a plain measurement with a weak prior.
 *
 * Agreement does not compound. Agreeing with a committed class is cheap for a colluding group
 * (its members agree with each other; once they commit, every agreement paid them), so the
 * agreements an agent is credited with are at most `agreementPerCheck` × its independent good
 * evidence (canaries passed, good feedback: ground truth the group cannot produce for itself):
 *   agreed' = min(agreed, agreementPerCheck × (canaryPassed + feedbackGood))
 * and agreed' replaces agreed in both formulas. An agent nobody has checked gains nothing from
 * agreement, however many certificates name it; disagreement always counts in full.
 *
 * Bounded: the book holds at most `maxFacts` fact ids and `maxAgents` agents. A fact that would
 * exceed either is refused (its method returns false and `full` is true); beyond that point two
 * peers may hold different books, so the bounds are set far above what a peer sees between
 * restarts of its reputation epoch.
 */
import { confidenceBand, CONFIDENCE_BANDS } from './aggregate.ts'
import type { Standing } from './types.ts'

export const reputationConfig = {
  /** Pseudo-counts before any evidence: a newcomer starts at 2.5 / 10 = 0.25 (the first Sybil cost). */
  prior: { good: 2.5, bad: 7.5 },
  /**
   * Evidence weights for reputation. Agreeing with a committed class is cheap to fake (copy the
   * crowd), so it counts 1; disagreeing counts 4, so an agent must agree 4× as often as it
   * disagrees just to hold 0.5. A canary has a known answer, so passing counts 3 and failing 15:
   * three failed canaries outweigh forty agreements. User feedback sits between.
   */
  reputation: { agreed: 1, disagreed: 4, canaryPassed: 3, canaryFailed: 15, feedbackGood: 1, feedbackBad: 3 },
  /** Agreements credited per piece of independent good evidence (canary passed, good feedback). */
  agreementPerCheck: 4,
  /** Accuracy's weak prior: a newcomer's accuracy is 0.5, and a few observations move it. */
  accuracyPrior: { good: 1, bad: 1 },
  /** Evidence weights for accuracy (symmetric: right and wrong count alike): canaries are ground truth. */
  accuracy: { canary: 4, feedback: 2, agreement: 0.5 },
  /** A proven double-signature multiplies every agent of the host by this, for good. */
  equivocationFactor: 0,
  maxFacts: 500_000,
  maxAgents: 100_000,
  maxAgentsPerCertificate: 256,
  maxIdLength: 256
} as const

/** What aggregation and committee formation read from a book (a view may adjust it, see canary.ts `Suspects`). */
export interface Standings {
  standing: (agent: string) => Standing
  hostReputation: (host: string) => number
}

export interface CertificateFact { id: string, agreed: readonly string[], disagreed: readonly string[] }
/** A spot check; `confidence` (what the agent reported with its answer) teaches its calibration. */
export interface CanaryFact { id: string, agent: string, correct: boolean, confidence?: number }
export interface FeedbackFact { id: string, agent: string, good: boolean }
export interface EquivocationFact { id: string, host: string }

export interface Counts {
  agreed: number
  disagreed: number
  canaryPassed: number
  canaryFailed: number
  feedbackGood: number
  feedbackBad: number
}

const COUNT_KEYS = ['agreed', 'disagreed', 'canaryPassed', 'canaryFailed', 'feedbackGood', 'feedbackBad'] as const
const KINDS = ['certificate', 'canary', 'feedback', 'equivocation'] as const
type Kind = typeof KINDS[number]

export class ReputationError extends Error {
  override name = 'ReputationError'
}

/** Saved form: every list sorted, so equal books print equal JSON. */
export interface ReputationJson {
  v: 1
  facts: Record<Kind, string[]>
  /** [agent, agreed, disagreed, canaryPassed, canaryFailed, feedbackGood, feedbackBad] */
  agents: Array<[string, number, number, number, number, number, number]>
  equivocators: string[]
  /** [agent, right₀, wrong₀, …] per confidence band (absent in books saved before calibration). */
  calibration?: Array<[string, ...number[]]>
}

export class ReputationBook {
  readonly #ids: Record<Kind, Set<string>> = { certificate: new Set(), canary: new Set(), feedback: new Set(), equivocation: new Set() }
  readonly #counts = new Map<string, Counts>()
  /** host → its known agents, for hostReputation. */
  readonly #hosts = new Map<string, Set<string>>()
  readonly #equivocators = new Set<string>()
  /** Per agent, right/wrong canaries per band of the confidence it reported (see aggregate.ts). */
  readonly #calibration = new Map<string, number[]>()
  #size = 0

  /** Agents whose answer was in (`agreed`) or not in (`disagreed`) the committed class. */
  certificate (fact: CertificateFact): boolean {
    const agreed = new Set(agents(fact.agreed, 'agreed'))
    const disagreed = new Set(agents(fact.disagreed, 'disagreed'))
    for (const a of agreed) if (disagreed.has(a)) throw new ReputationError(`certificate ${fact.id} lists ${a} as both agreeing and disagreeing`)
    return this.#add('certificate', fact.id, [...agreed, ...disagreed], () => {
      for (const a of agreed) this.#count(a).agreed++
      for (const a of disagreed) this.#count(a).disagreed++
    })
  }

  /** A spot check with a known answer. */
  canary (fact: CanaryFact): boolean {
    agentId(fact.agent)
    bool(fact.correct, 'canary.correct')
    const reported = typeof fact.confidence === 'number' && Number.isFinite(fact.confidence) ? fact.confidence : undefined
    return this.#add('canary', fact.id, [fact.agent], () => {
      this.#count(fact.agent)[fact.correct ? 'canaryPassed' : 'canaryFailed']++
      if (reported !== undefined) {
        let c = this.#calibration.get(fact.agent)
        if (c === undefined) this.#calibration.set(fact.agent, c = new Array<number>(2 * CONFIDENCE_BANDS.length).fill(0))
        c[2 * confidenceBand(reported) + (fact.correct ? 0 : 1)]!++
      }
    })
  }

  /** The user's judgement of an answer. */
  feedback (fact: FeedbackFact): boolean {
    agentId(fact.agent)
    bool(fact.good, 'feedback.good')
    return this.#add('feedback', fact.id, [fact.agent], () => { this.#count(fact.agent)[fact.good ? 'feedbackGood' : 'feedbackBad']++ })
  }

  /** Proof that `host` signed two conflicting statements: all its agents, known or future, drop. */
  equivocation (fact: EquivocationFact): boolean {
    if (typeof fact.host !== 'string' || fact.host === '' || fact.host.includes('/') || fact.host.length > reputationConfig.maxIdLength) {
      throw new ReputationError(`equivocation host must be a peer id, got ${JSON.stringify(fact.host)}`)
    }
    return this.#add('equivocation', fact.id, [], () => { this.#equivocators.add(fact.host) })
  }

  standing (agent: string): Standing {
    const calibration = this.#calibration.get(agent)
    return { reputation: this.reputation(agent), accuracy: this.accuracy(agent), ...(calibration !== undefined ? { calibration: [...calibration] } : {}) }
  }

  reputation (agent: string): number {
    const c = this.counts(agent)
    const w = reputationConfig.reputation
    const good = reputationConfig.prior.good + w.agreed * creditedAgreements(c) + w.canaryPassed * c.canaryPassed + w.feedbackGood * c.feedbackGood
    const bad = reputationConfig.prior.bad + w.disagreed * c.disagreed + w.canaryFailed * c.canaryFailed + w.feedbackBad * c.feedbackBad
    return good / (good + bad) * (this.#equivocators.has(hostOf(agent)) ? reputationConfig.equivocationFactor : 1)
  }

  accuracy (agent: string): number {
    const c = this.counts(agent)
    const w = reputationConfig.accuracy
    const right = reputationConfig.accuracyPrior.good + w.canary * c.canaryPassed + w.feedback * c.feedbackGood + w.agreement * creditedAgreements(c)
    const wrong = reputationConfig.accuracyPrior.bad + w.canary * c.canaryFailed + w.feedback * c.feedbackBad + w.agreement * c.disagreed
    return right / (right + wrong)
  }

  /**
   * Committee voting power of a host: the mean reputation of its known agents (in agent-id order,
   * so the sum is bit-identical everywhere), a newcomer's if none; an equivocator's is 0.
   */
  hostReputation (host: string): number {
    const known = [...(this.#hosts.get(host) ?? [])].sort()
    const factor = this.#equivocators.has(host) ? reputationConfig.equivocationFactor : 1
    if (known.length === 0) return newcomerReputation() * factor
    let sum = 0
    for (const a of known) sum += this.reputation(a)
    return sum / known.length
  }

  counts (agent: string): Counts {
    return { ...(this.#counts.get(agent) ?? zero()) }
  }

  /**
   * Whether the agent has passed an independent check: a canary or good feedback. Agreeing
   * certificates do not vet: a colluding group certifies itself.
   */
  vetted (agent: string): boolean {
    const c = this.#counts.get(agent)
    return c !== undefined && c.canaryPassed + c.feedbackGood > 0
  }

  isEquivocator (host: string): boolean {
    return this.#equivocators.has(host)
  }

  /** Fact ids held. */
  get size (): number { return this.#size }

  /** True once either bound is reached: new facts may be refused from here on. */
  get full (): boolean {
    return this.#size >= reputationConfig.maxFacts || this.#counts.size >= reputationConfig.maxAgents
  }

  toJSON (): ReputationJson {
    const facts = {} as Record<Kind, string[]>
    for (const k of KINDS) facts[k] = [...this.#ids[k]].sort()
    const agents = [...this.#counts.keys()].sort().map(a => {
      const c = this.#counts.get(a)!
      return [a, ...COUNT_KEYS.map(k => c[k])] as ReputationJson['agents'][number]
    })
    const calibration = [...this.#calibration.keys()].sort().map(a => [a, ...this.#calibration.get(a)!] as [string, ...number[]])
    return { v: 1, facts, agents, equivocators: [...this.#equivocators].sort(), ...(calibration.length > 0 ? { calibration } : {}) }
  }

  /** Reads a saved book back, checking every field; throws a ReputationError naming what is wrong. */
  static fromJSON (json: unknown): ReputationBook {
    const o = object(json, 'reputation book')
    if (o.v !== 1) throw new ReputationError(`reputation book version must be 1, got ${String(o.v)}`)
    const book = new ReputationBook()
    const facts = object(o.facts, 'facts')
    for (const k of KINDS) {
      for (const id of array(facts[k], `facts.${k}`)) book.#ids[k].add(factId(id))
      book.#size += book.#ids[k].size
    }
    for (const [i, row] of array(o.agents, 'agents').entries()) {
      const r = array(row, `agents[${i}]`)
      if (r.length !== 1 + COUNT_KEYS.length) throw new ReputationError(`agents[${i}] must have ${1 + COUNT_KEYS.length} entries`)
      const agent = r[0] as string
      agentId(agent)
      if (book.#counts.has(agent)) throw new ReputationError(`agents lists ${agent} twice`)
      const c = zero()
      COUNT_KEYS.forEach((k, j) => {
        const n = r[j + 1]
        if (!Number.isSafeInteger(n) || (n as number) < 0) throw new ReputationError(`agents[${i}].${k} must be a non-negative integer`)
        c[k] = n as number
      })
      book.#counts.set(agent, c)
      book.#index(agent)
    }
    for (const [i, row] of (o.calibration === undefined ? [] : array(o.calibration, 'calibration')).entries()) {
      const r = array(row, `calibration[${i}]`)
      const agent = r[0] as string
      agentId(agent)
      if (r.length !== 1 + 2 * CONFIDENCE_BANDS.length || !r.slice(1).every(n => Number.isSafeInteger(n) && (n as number) >= 0)) throw new ReputationError(`calibration[${i}] must be an agent and ${2 * CONFIDENCE_BANDS.length} non-negative integers`)
      if (book.#calibration.has(agent)) throw new ReputationError(`calibration lists ${agent} twice`)
      book.#calibration.set(agent, r.slice(1) as number[])
    }
    for (const h of array(o.equivocators, 'equivocators')) {
      if (typeof h !== 'string' || h === '') throw new ReputationError('equivocators must be peer ids')
      book.#equivocators.add(h)
    }
    if (book.#size > reputationConfig.maxFacts || book.#counts.size > reputationConfig.maxAgents) {
      throw new ReputationError(`reputation book exceeds its bounds (${reputationConfig.maxFacts} facts, ${reputationConfig.maxAgents} agents)`)
    }
    return book
  }

  #add (kind: Kind, id: unknown, touched: readonly string[], apply: () => void): boolean {
    const key = factId(id)
    if (this.#ids[kind].has(key)) return false
    if (this.#size >= reputationConfig.maxFacts) return false
    const fresh = touched.filter(a => !this.#counts.has(a)).length
    if (this.#counts.size + fresh > reputationConfig.maxAgents) return false
    this.#ids[kind].add(key)
    this.#size++
    apply()
    return true
  }

  #count (agent: string): Counts {
    let c = this.#counts.get(agent)
    if (c === undefined) {
      c = zero()
      this.#counts.set(agent, c)
      this.#index(agent)
    }
    return c
  }

  #index (agent: string): void {
    const host = hostOf(agent)
    let set = this.#hosts.get(host)
    if (set === undefined) this.#hosts.set(host, set = new Set())
    set.add(agent)
  }
}

/** Agreements that count: at most `agreementPerCheck` per canary passed or good feedback. */
export function creditedAgreements (c: Counts): number {
  return Math.min(c.agreed, reputationConfig.agreementPerCheck * (c.canaryPassed + c.feedbackGood))
}

/** What an agent with no evidence holds. */
export function newcomerReputation (): number {
  return reputationConfig.prior.good / (reputationConfig.prior.good + reputationConfig.prior.bad)
}

function zero (): Counts {
  return { agreed: 0, disagreed: 0, canaryPassed: 0, canaryFailed: 0, feedbackGood: 0, feedbackBad: 0 }
}

function hostOf (agent: string): string {
  const slash = agent.indexOf('/')
  return slash < 0 ? agent : agent.slice(0, slash)
}

function factId (id: unknown): string {
  if (typeof id !== 'string' || id === '' || id.length > reputationConfig.maxIdLength) {
    throw new ReputationError(`fact id must be a string of 1..${reputationConfig.maxIdLength} characters`)
  }
  return id
}

function agentId (agent: unknown): void {
  if (typeof agent !== 'string' || agent.length > reputationConfig.maxIdLength || !/^[^/]+\/./su.test(agent)) {
    throw new ReputationError(`agent must be <host peer id>/<name>, got ${JSON.stringify(agent)}`)
  }
}

function agents (list: unknown, what: string): string[] {
  if (!Array.isArray(list) || list.length > reputationConfig.maxAgentsPerCertificate) {
    throw new ReputationError(`certificate.${what} must be a list of at most ${reputationConfig.maxAgentsPerCertificate} agents`)
  }
  for (const a of list) agentId(a)
  return list as string[]
}

function bool (v: unknown, what: string): void {
  if (typeof v !== 'boolean') throw new ReputationError(`${what} must be a boolean`)
}

function object (v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ReputationError(`${what} must be an object`)
  return v as Record<string, unknown>
}

function array (v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new ReputationError(`${what} must be an array`)
  return v
}
