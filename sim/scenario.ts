/**
 * Scenario files: what a simulation runs. YAML (or JSON), parsed strictly: an unknown key, a value
 * of the wrong type or out of range is refused with its path and what is expected, so a typo
 * never silently runs the default. Every field but `name` has a default; the built-in scenarios
 * in `sim/scenarios/` are ordinary scenario files.
 */
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import YAML from 'yaml'
import { POLICY_NAMES, type PolicyName } from '../protocols/routing/index.ts'
import { CATALOGUE } from './catalogue.ts'
import type { ByzantineBehaviour } from './byzantine.ts'
import type { ClockSpread } from './clock.ts'
import { randomScenario } from './random-scenario.ts'

export type Range = [number, number]

export type Topology =
  /** Every link's base latency drawn once, uniformly in `latencyMs`. */
  | { kind: 'uniform', latencyMs: Range, jitter: number }
  /** Nodes spread over regions by share; base latency from the region matrix (ms, symmetric). */
  | { kind: 'regions', regions: Array<{ name: string, share: number }>, latencyMs: number[][], jitter: number }

export type Fault =
  /** A share of agents answer wrongly on `rate` of their calls (honest-looking confidence). */
  | { kind: 'wrong-answers', fraction: number, rate: number }
  /** Agents that are always wrong and claim confidence 1.0. */
  | { kind: 'confident-liar', count: number }
  /**
   * A share of agents that all give the same wrong answer (a colluding group), claiming
   * `confidence` (default 0.9). Sleepers: with `sleepCalls`, each is honest for its first that
   * many calls (canaries included: it passes its first checks) and colludes after.
   */
  | { kind: 'collude', fraction: number, confidence?: number, sleepCalls?: number }
  /** At `at` (s), a share of nodes crash (mid-task); they come back at `recoverAt` if given. */
  | { kind: 'crash', at: number, fraction: number, recoverAt?: number }
  /** Nodes leave and come back: `perMinute` of them leave each minute, down for `downS`. */
  | { kind: 'churn', perMinute: number, downS: Range }
  /** From `at` to `healAt` (s) the nodes are split into `groups` that cannot reach each other. */
  | { kind: 'partition', at: number, healAt: number, groups: number }
  /**
   * At `at` (s), a share of one task type's agents become unavailable, degrade to `quality`, or
   * fail every call (an error, as an agent whose model endpoint went away). `pick`: which agents
   * (`random`, or `best`: the highest quality first, the ones a learned router relies on).
   */
  | { kind: 'shock', at: number, type: string, share: number, effect: 'unavailable' | 'degrade' | 'fail', quality: number, pick?: 'random' | 'best' }
  /** At the protocol boundary, between `at` and `until` (s): drop, duplicate or delay messages. */
  | { kind: 'drop', rate: number, at: number, until: number }
  | { kind: 'duplicate', rate: number, at: number, until: number }
  | { kind: 'delay', rate: number, extraMs: number, at: number, until: number }
  /** Fake VCVs: hosts advertising agents that claim every skill cheaply and never deliver. */
  | { kind: 'sybil', count: number }
  /** A share of nodes are Byzantine committee members (see sim/byzantine.ts for the behaviours). */
  | { kind: 'byzantine-members', fraction: number, behaviour: ByzantineBehaviour }

/**
 * Nodes behind NAT, as libp2p reaches them: a NAT'd node cannot be dialled, so it holds a
 * reservation on a public relay (circuit relay v2) and is reached through it; a relayed
 * connection then tries to upgrade to direct by hole punching (DCUtR / WebRTC). Leave the block
 * out and every node is public (the model before NAT, output unchanged).
 */
export interface Nat {
  /** Share of all nodes behind NAT (requesters included). */
  fraction: number
  /** Public nodes (not requesters, if enough) that act as relays; each NAT'd node reserves on one, drawn by the seed. Default 20, or every public node if fewer. */
  relays: number
  /** Probability that hole punching upgrades a relayed connection to direct (default 0.7, about what libp2p's measurement campaign found). */
  holePunch: number
  /** Forwarding delay a relay adds to each message it carries (ms, uniform in the range). */
  relayExtraMs: Range
}

export interface Scenario {
  name: string
  description: string
  seed: number
  nodes: number
  /** Virtual seconds over which the task stream arrives. */
  durationS: number
  /** `fast`: a keyed-hash stand-in for signatures (same bytes, checked by a registry); `ed25519`: real keys. */
  crypto: 'fast' | 'ed25519'
  topology: Topology
  network: { loss: number, bandwidthMbps: number, gossipDegree: number, heartbeatMs: number }
  /**
   * `confidence`: what honest agents report: `noisy` (their success rate ± noise, whatever the
   * answer: the default) or `calibrated` (high when right, low when wrong: a self-report worth
   * trusting, the case CP-WBFT's rule is built for).
   */
  agents: { hostShare: number, perHost: number, types: string[], quality: Range, latencyMs: Range, cost: Range, capacity: Range, confidence: 'noisy' | 'calibrated' }
  tasks: {
    count: number
    /** Nodes that submit tasks (each keeps the full capability table and index). */
    requesters: number
    shapes: { single: number, chain: number, fanout: number }
    difficulty: { easy: number, medium: number, hard: number }
    /** Share of subtasks that need trust (several agents, committee consensus). */
    trusted: number
    redundancy: number
    committee: number
    deadlineMs: number
  }
  policies: PolicyName[]
  /** Test only, from the command line: a deliberate protocol bug in every consensus peer. */
  injectBug?: TestBug
  /** Routing settings every policy gets (LinUCB's change detection on or off: `routing: { changeDetection: false }`). */
  routing: { changeDetection: boolean }
  /** Whether tallies use each agent's learned calibration (default true; false: the fixed cap and shrink only). */
  consensus: { calibration: boolean }
  /** How far apart the nodes' clocks are (sim/clock.ts): offsets in [0, offsetMs], drift in ±driftPpm. */
  clocks: ClockSpread
  faults: Fault[]
  /**
   * Re-run the scenario for each value with the first policy, setting the fraction of every
   * `wrong-answers` and `collude` fault to it (a `collude` fault is added if there is none).
   */
  sweep?: { faulty: number[] }
  /** Present only when the scenario has a `nat` block. */
  nat?: Nat
}

export class ScenarioError extends Error {
  override name = 'ScenarioError'
}

type Obj = Record<string, unknown>

/** Reads one object's fields by name, checking each; `done()` refuses the keys nobody read. */
class Fields {
  readonly #obj: Obj
  readonly #path: string
  readonly #seen = new Set<string>()
  constructor (value: unknown, path: string) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ScenarioError(`${path || 'the scenario'} must be a map`)
    this.#obj = value as Obj
    this.#path = path
  }

  #get (key: string): unknown {
    this.#seen.add(key)
    return this.#obj[key]
  }

  at (key: string): string { return this.#path === '' ? key : `${this.#path}.${key}` }

  num (key: string, dflt: number | undefined, o: { min?: number, max?: number, int?: boolean } = {}): number {
    const v = this.#get(key)
    if (v === undefined) {
      if (dflt === undefined) throw new ScenarioError(`${this.at(key)} is required`)
      return dflt
    }
    const what = `${o.int === true ? 'an integer' : 'a number'}${o.min !== undefined ? ` >= ${o.min}` : ''}${o.max !== undefined ? ` <= ${o.max}` : ''}`
    if (typeof v !== 'number' || !Number.isFinite(v) || (o.int === true && !Number.isInteger(v)) || (o.min !== undefined && v < o.min) || (o.max !== undefined && v > o.max)) {
      throw new ScenarioError(`${this.at(key)} must be ${what}, got ${JSON.stringify(v)}`)
    }
    return v
  }

  bool (key: string, dflt: boolean): boolean {
    const v = this.#get(key) ?? dflt
    if (typeof v !== 'boolean') throw new ScenarioError(`${this.at(key)} must be true or false, got ${JSON.stringify(v)}`)
    return v
  }

  optNum (key: string, o: { min?: number, max?: number } = {}): number | undefined {
    return this.#obj[key] === undefined ? (this.#seen.add(key), undefined) : this.num(key, undefined, o)
  }

  str (key: string, dflt: string | undefined, choices?: readonly string[]): string {
    const v = this.#get(key) ?? dflt
    if (v === undefined) throw new ScenarioError(`${this.at(key)} is required`)
    if (typeof v !== 'string' || (choices !== undefined && !choices.includes(v))) {
      throw new ScenarioError(`${this.at(key)} must be ${choices !== undefined ? `one of ${choices.join(', ')}` : 'a string'}, got ${JSON.stringify(v)}`)
    }
    return v
  }

  range (key: string, dflt: Range, o: { min?: number, max?: number, int?: boolean } = {}): Range {
    const v = this.#get(key)
    if (v === undefined) return dflt
    const ok = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && (o.int !== true || Number.isInteger(x)) && (o.min === undefined || x >= o.min) && (o.max === undefined || x <= o.max)
    if (!Array.isArray(v) || v.length !== 2 || !ok(v[0]) || !ok(v[1]) || v[0] > v[1]) {
      throw new ScenarioError(`${this.at(key)} must be [low, high] with low <= high${o.min !== undefined ? `, both >= ${o.min}` : ''}${o.max !== undefined ? ` and <= ${o.max}` : ''}, got ${JSON.stringify(v)}`)
    }
    return [v[0], v[1]]
  }

  list (key: string): unknown[] | undefined {
    const v = this.#get(key)
    if (v === undefined) return undefined
    if (!Array.isArray(v)) throw new ScenarioError(`${this.at(key)} must be a list`)
    return v
  }

  sub (key: string): Fields {
    const v = this.#get(key)
    if (v === null) throw new ScenarioError(`${this.at(key)} must be a map (leave it out for the defaults)`)
    return new Fields(v ?? {}, this.at(key))
  }

  has (key: string): boolean { return this.#obj[key] !== undefined }

  done (): void {
    for (const key of Object.keys(this.#obj)) {
      if (!this.#seen.has(key)) throw new ScenarioError(`unknown field ${this.at(key)}`)
    }
  }
}

/** Relative shares (normalised to sum 1); keys left out are 0 once any is given. */
function shares<K extends string> (f: Fields, keys: readonly K[], dflt: Record<K, number>): Record<K, number> {
  const out = {} as Record<K, number>
  const given = keys.some(x => f.has(x))
  for (const k of keys) out[k] = f.num(k, given ? 0 : dflt[k], { min: 0 })
  f.done()
  const total = keys.reduce((s, k) => s + out[k], 0)
  if (!(total > 0)) throw new ScenarioError(`${keys.map(k => f.at(k)).join(', ')} must not all be 0`)
  for (const k of keys) out[k] /= total
  return out
}

function parseFault (value: unknown, path: string, types: readonly string[]): Fault {
  const f = new Fields(value, path)
  const kind = f.str('kind', undefined, ['wrong-answers', 'confident-liar', 'collude', 'crash', 'churn', 'partition', 'shock', 'drop', 'duplicate', 'delay', 'sybil', 'byzantine-members'])
  let fault: Fault
  const window = (): { at: number, until: number } => {
    const at = f.num('at', 0, { min: 0 })
    return { at, until: f.num('until', Number.MAX_SAFE_INTEGER, { min: at }) }
  }
  switch (kind) {
    case 'wrong-answers': fault = { kind, fraction: f.num('fraction', undefined, { min: 0, max: 1 }), rate: f.num('rate', 1, { min: 0, max: 1 }) }; break
    case 'confident-liar': fault = { kind, count: f.num('count', 1, { min: 0, int: true }) }; break
    case 'collude': {
      const confidence = f.optNum('confidence', { min: 0, max: 1 })
      const sleepCalls = f.optNum('sleepCalls', { min: 0 })
      fault = { kind, fraction: f.num('fraction', undefined, { min: 0, max: 1 }), ...(confidence !== undefined ? { confidence } : {}), ...(sleepCalls !== undefined ? { sleepCalls: Math.floor(sleepCalls) } : {}) }
      break
    }
    case 'crash': {
      const at = f.num('at', undefined, { min: 0 })
      const recoverAt = f.optNum('recoverAt', { min: at })
      fault = { kind, at, fraction: f.num('fraction', undefined, { min: 0, max: 1 }), ...(recoverAt !== undefined ? { recoverAt } : {}) }
      break
    }
    case 'churn': fault = { kind, perMinute: f.num('perMinute', undefined, { min: 0, max: 100_000 }), downS: f.range('downS', [10, 60], { min: 0 }) }; break
    case 'partition': {
      const at = f.num('at', undefined, { min: 0 })
      fault = { kind, at, healAt: f.num('healAt', undefined, { min: at }), groups: f.num('groups', 2, { min: 2, max: 1000, int: true }) }
      break
    }
    case 'shock': fault = {
      kind,
      at: f.num('at', undefined, { min: 0 }),
      type: f.str('type', undefined, types),
      share: f.num('share', 1, { min: 0, max: 1 }),
      effect: f.str('effect', 'unavailable', ['unavailable', 'degrade', 'fail']) as 'unavailable' | 'degrade' | 'fail',
      quality: f.num('quality', 0.1, { min: 0, max: 1 }),
      pick: f.str('pick', 'random', ['random', 'best']) as 'random' | 'best'
    }; break
    case 'drop': fault = { kind, rate: f.num('rate', undefined, { min: 0, max: 1 }), ...window() }; break
    case 'duplicate': fault = { kind, rate: f.num('rate', undefined, { min: 0, max: 1 }), ...window() }; break
    case 'delay': fault = { kind, rate: f.num('rate', undefined, { min: 0, max: 1 }), extraMs: f.num('extraMs', 500, { min: 0 }), ...window() }; break
    case 'byzantine-members': fault = {
      kind,
      fraction: f.num('fraction', undefined, { min: 0, max: 1 }),
      behaviour: f.str('behaviour', 'equivocate', ['silent', 'equivocate', 'double-vote', 'junk']) as ByzantineBehaviour
    }; break
    default: fault = { kind: 'sybil', count: f.num('count', undefined, { min: 0, int: true }) }
  }
  f.done()
  return fault
}

/** Validates a parsed scenario, filling defaults. `overrides` come from the command line. */
/** What a command line may set over a scenario file. */
export interface ScenarioOverrides {
  nodes?: number
  seed?: number
  /** Test only: a deliberate protocol bug (`InstanceInit.testBug`), to check the simulator stops loudly. */
  injectBug?: TestBug
}

/**
 * Clocks as NTP keeps hosts on the internet: within 100 ms of each other, running up to 50 ppm
 * fast or slow (a quartz oscillator's spec).
 */
const DEFAULT_CLOCKS: ClockSpread = { offsetMs: 100, driftPpm: 50 }

export const TEST_BUGS = ['lock-off-by-one'] as const
export type TestBug = typeof TEST_BUGS[number]

export function parseScenario (value: unknown, overrides: ScenarioOverrides = {}): Scenario {
  const f = new Fields(value, '')
  const name = f.str('name', undefined)
  if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(name)) throw new ScenarioError(`name must be lower-case letters, digits and dashes, got ${JSON.stringify(name)}`)
  const description = f.str('description', '')
  const seed = overrides.seed ?? f.num('seed', 1, { min: 0, max: 2 ** 32 - 1, int: true })
  if (overrides.seed !== undefined) f.num('seed', 1)
  const nodes = overrides.nodes ?? f.num('nodes', 100, { min: 4, max: 1_000_000, int: true })
  if (overrides.nodes !== undefined) f.num('nodes', 100)
  const durationS = f.num('durationS', 600, { min: 1 })
  const crypto = f.str('crypto', 'fast', ['fast', 'ed25519']) as 'fast' | 'ed25519'

  const t = f.sub('topology')
  const kind = t.str('kind', 'uniform', ['uniform', 'regions']) as Topology['kind']
  let topology: Topology
  if (kind === 'uniform') {
    topology = { kind, latencyMs: t.range('latencyMs', [10, 80], { min: 0 }), jitter: t.num('jitter', 0.1, { min: 0, max: 2 }) }
  } else {
    const regions = (t.list('regions') ?? []).map((r, i) => {
      const rf = new Fields(r, t.at(`regions[${i}]`))
      const region = { name: rf.str('name', undefined), share: rf.num('share', 1, { min: 0 }) }
      rf.done()
      return region
    })
    if (regions.length === 0 || regions.length > 255) throw new ScenarioError('topology.regions must list 1 to 255 regions')
    if (!regions.some(r => r.share > 0)) throw new ScenarioError('topology.regions: at least one region needs a share above 0')
    const matrix = t.list('latencyMs')
    if (matrix === undefined || matrix.length !== regions.length || !matrix.every(row => Array.isArray(row) && row.length === regions.length && row.every(x => typeof x === 'number' && Number.isFinite(x) && x >= 0))) {
      throw new ScenarioError(`topology.latencyMs must be a ${regions.length}×${regions.length} matrix of finite milliseconds >= 0 (one row per region)`)
    }
    const m = matrix as number[][]
    for (let i = 0; i < m.length; i++) {
      for (let j = 0; j < i; j++) if (m[i]![j] !== m[j]![i]) throw new ScenarioError(`topology.latencyMs must be symmetric: row ${i + 1} column ${j + 1} is ${m[i]![j]}, row ${j + 1} column ${i + 1} is ${m[j]![i]}`)
    }
    topology = { kind, regions, latencyMs: matrix as number[][], jitter: t.num('jitter', 0.1, { min: 0, max: 2 }) }
  }
  t.done()

  const n = f.sub('network')
  const network = {
    loss: n.num('loss', 0, { min: 0, max: 0.9 }),
    bandwidthMbps: n.num('bandwidthMbps', 100, { min: 0.001 }),
    gossipDegree: n.num('gossipDegree', 8, { min: 2, max: 64, int: true }),
    heartbeatMs: n.num('heartbeatMs', 1000, { min: 1 })
  }
  n.done()

  const names = CATALOGUE.map(c => c.name)
  const a = f.sub('agents')
  const types = (a.list('types') ?? names).map((x, i) => {
    if (typeof x !== 'string' || !names.includes(x)) throw new ScenarioError(`agents.types[${i}] must be one of ${names.join(', ')}, got ${JSON.stringify(x)}`)
    return x
  })
  if (types.length === 0) throw new ScenarioError('agents.types must list at least one type')
  const agents = {
    hostShare: a.num('hostShare', 0.5, { min: 0, max: 1 }),
    perHost: a.num('perHost', 1, { min: 1, max: 64, int: true }),
    types,
    quality: a.range('quality', [0.6, 0.98], { min: 0, max: 1 }),
    latencyMs: a.range('latencyMs', [50, 500], { min: 1 }),
    cost: a.range('cost', [0.1, 2], { min: 0 }),
    capacity: a.range('capacity', [1, 8], { min: 1, int: true }),
    confidence: a.str('confidence', 'noisy', ['noisy', 'calibrated']) as 'noisy' | 'calibrated'
  }
  a.done()

  const k = f.sub('tasks')
  const tasks = {
    count: k.num('count', 300, { min: 1, max: 10_000_000, int: true }),
    requesters: k.num('requesters', 10, { min: 1, int: true }),
    shapes: shares(k.sub('shapes'), ['single', 'chain', 'fanout'] as const, { single: 0.6, chain: 0.2, fanout: 0.2 }),
    difficulty: shares(k.sub('difficulty'), ['easy', 'medium', 'hard'] as const, { easy: 0.5, medium: 0.3, hard: 0.2 }),
    trusted: k.num('trusted', 0.2, { min: 0, max: 1 }),
    redundancy: k.num('redundancy', 3, { min: 1, max: 16, int: true }),
    committee: k.num('committee', 4, { min: 4, max: 64, int: true }),
    deadlineMs: k.num('deadlineMs', 10_000, { min: 100 })
  }
  k.done()
  if (tasks.requesters >= nodes) throw new ScenarioError(`tasks.requesters (${tasks.requesters}) must leave some of the ${nodes} nodes to host agents: use fewer requesters or more nodes`)
  if (Math.round(nodes * agents.hostShare) < 1) throw new ScenarioError(`agents.hostShare × nodes must leave at least one host (${agents.hostShare} × ${nodes})`)

  const policies = (f.list('policies') ?? ['linucb', 'random', 'round-robin', 'greedy-similarity', 'symphony']).map((p, i) => {
    if (typeof p !== 'string' || !(POLICY_NAMES as readonly string[]).includes(p)) throw new ScenarioError(`policies[${i}] must be one of ${POLICY_NAMES.join(', ')}, got ${JSON.stringify(p)}`)
    return p as PolicyName
  })
  if (policies.length === 0 || new Set(policies).size !== policies.length) throw new ScenarioError('policies must list at least one policy, each once')

  const r = f.sub('routing')
  const routing = { changeDetection: r.bool('changeDetection', true) }
  r.done()
  const cs = f.sub('consensus')
  const consensus = { calibration: cs.bool('calibration', true) }
  cs.done()
  const c = f.sub('clocks')
  const clocks = { offsetMs: c.num('offsetMs', DEFAULT_CLOCKS.offsetMs, { min: 0, max: 3_600_000, int: true }), driftPpm: c.num('driftPpm', DEFAULT_CLOCKS.driftPpm, { min: 0, max: 100_000 }) }
  c.done()
  const faults = (f.list('faults') ?? []).map((x, i) => parseFault(x, `faults[${i}]`, types))
  let sweep: Scenario['sweep']
  if (f.has('sweep')) {
    const s = f.sub('sweep')
    const faulty = (s.list('faulty') ?? []).map((x, i) => {
      if (typeof x !== 'number' || !(x >= 0 && x <= 1)) throw new ScenarioError(`sweep.faulty[${i}] must be a fraction in [0, 1], got ${JSON.stringify(x)}`)
      return x
    })
    if (faulty.length === 0) throw new ScenarioError('sweep.faulty must list at least one fraction')
    s.done()
    sweep = { faulty }
  }
  const nat = f.has('nat') ? parseNat(f.sub('nat'), nodes) : undefined
  f.done()
  return { name, description, seed, nodes, durationS, crypto, topology, network, agents, tasks, policies, routing, consensus, clocks, faults, ...(sweep !== undefined ? { sweep } : {}), ...(nat !== undefined ? { nat } : {}), ...(overrides.injectBug !== undefined ? { injectBug: overrides.injectBug } : {}) }
}

function parseNat (f: Fields, nodes: number): Nat {
  const fraction = f.num('fraction', undefined, { min: 0, max: 1 })
  const publicNodes = nodes - Math.round(fraction * nodes)
  if (fraction > 0 && publicNodes < 1) throw new ScenarioError(`${f.at('fraction')} must leave at least one public node to relay (${fraction} × ${nodes} nodes are all behind NAT)`)
  const nat: Nat = {
    fraction,
    relays: f.num('relays', Math.max(1, Math.min(20, publicNodes)), { min: 1, int: true }),
    holePunch: f.num('holePunch', 0.7, { min: 0, max: 1 }),
    relayExtraMs: f.range('relayExtraMs', [10, 40], { min: 0 })
  }
  f.done()
  if (nat.relays > publicNodes) throw new ScenarioError(`${f.at('relays')} must be at most the ${publicNodes} public nodes (${nodes} nodes, ${fraction} behind NAT), got ${nat.relays}`)
  return nat
}

const BUILT_IN_DIR = join(fileURLToPath(new URL('.', import.meta.url)), 'scenarios')

export function builtInScenarios (): string[] {
  return ['quickstart', 'scale-10k', 'byzantine-sweep', 'collusion-7', 'sleepers-7', 'calibrated-7', 'shock-recovery', 'shock-fail', 'churn', 'partition-heal', 'nat-10k', 'random']
}

/** A built-in name or a file path; YAML or JSON. `random` is drawn from the seed (`random-scenario.ts`). */
export function loadScenario (nameOrPath: string, overrides: ScenarioOverrides = {}): Scenario {
  if (nameOrPath === 'random') return randomScenario(overrides)
  const builtIn = builtInScenarios().includes(nameOrPath)
  const path = builtIn ? join(BUILT_IN_DIR, `${nameOrPath}.yaml`) : nameOrPath
  if (!builtIn && !existsSync(path)) throw new ScenarioError(`no scenario file ${path} and no built-in scenario of that name (built-in: ${builtInScenarios().join(', ')})`)
  let parsed: unknown
  try {
    parsed = YAML.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new ScenarioError(`${path} is not valid YAML: ${(err as Error).message}`)
  }
  try {
    return parseScenario(parsed, overrides)
  } catch (err) {
    if (err instanceof ScenarioError) throw new ScenarioError(`${path}: ${err.message}`)
    throw err
  }
}
