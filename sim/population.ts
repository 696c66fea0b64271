/**
 * Who is in a scenario: which nodes submit tasks, which host which agents (and what each agent
 * advertises), which agents misbehave, and the task stream. A pure function of the scenario and
 * its seed, shared by the simulator and the cross-check against real libp2p peers, so both runs
 * see the same agents and the same tasks.
 */
import type { LocalAgent } from '../protocols/capability/index.ts'
import type { AgentModel } from './agents.ts'
import { CATALOGUE, QUALIFIERS } from './catalogue.ts'
import { between, pick, sample, stream, type Rng } from './rng.ts'
import type { Scenario } from './scenario.ts'
import { makeTasks, type SimTask } from './tasks.ts'

export interface Population {
  /** Node indices that submit tasks (never crash or churn: they are the measured clients). */
  requesters: number[]
  agents: AgentModel[]
  /** Per agent (same index), what its host advertises. */
  adverts: LocalAgent[]
  tasks: SimTask[]
}

export function makePopulation (s: Scenario): Population {
  const setup = stream(s.seed, 'setup')
  const order = sample(setup, s.nodes, s.nodes)
  const requesters = order.slice(0, s.tasks.requesters).sort((a, b) => a - b)
  const others = order.slice(s.tasks.requesters)
  const hostCount = Math.max(1, Math.min(others.length, Math.round(s.nodes * s.agents.hostShare)))
  const types = CATALOGUE.filter(t => s.agents.types.includes(t.name))
  const agents: AgentModel[] = []
  const add = (host: number, name: string, type: string, behaviour: AgentModel['behaviour']): void => {
    const a = s.agents
    agents.push({
      index: agents.length,
      host,
      name,
      type,
      quality: between(setup, a.quality),
      latencyMs: between(setup, a.latencyMs),
      cost: behaviour === 'sybil' ? a.cost[0] : Math.round(between(setup, a.cost) * 100) / 100,
      capacity: Math.round(between(setup, a.capacity)),
      behaviour,
      wrongRate: 0,
      available: true,
      ...(s.agents.confidence === 'calibrated' ? { calibrated: true } : {}),
      running: 0,
      queue: []
    })
  }
  for (const host of others.slice(0, hostCount)) {
    for (let k = 0; k < s.agents.perHost; k++) {
      const type = types[pick(setup, types.length)]!
      add(host, `${type.name}-${k}`, type.name, 'honest')
    }
  }
  // Sybil ads: nodes that host no agent (or any non-requester) advertise one that claims everything.
  const sybils = s.faults.reduce((n, f) => n + (f.kind === 'sybil' ? f.count : 0), 0)
  for (const host of (others.length > hostCount ? others.slice(hostCount) : others).slice(0, sybils)) add(host, 'everything', types[0]!.name, 'sybil')
  assignBehaviours(s, agents, stream(s.seed, 'behaviours'))
  const words = stream(s.seed, 'descriptions')
  const adverts = agents.map(a => advert(a, types, words))
  return { requesters, agents, adverts, tasks: makeTasks(s, requesters, stream(s.seed, 'tasks')) }
}

/** Agent faults: wrong answers, confident liars, colluders, drawn among the honest agents. */
function assignBehaviours (s: Scenario, agents: AgentModel[], rng: Rng): void {
  for (const f of s.faults) {
    const pool = agents.filter(a => a.behaviour === 'honest')
    if (f.kind === 'wrong-answers' || f.kind === 'collude') {
      for (const i of sample(rng, pool.length, Math.round(f.fraction * agents.length))) {
        pool[i]!.behaviour = f.kind === 'collude' ? 'colluder' : 'wrong'
        if (f.kind === 'wrong-answers') pool[i]!.wrongRate = f.rate
        if (f.kind === 'collude') {
          pool[i]!.confidence = f.confidence ?? 0.9
          if (f.sleepCalls !== undefined) pool[i]!.sleepCalls = f.sleepCalls
        }
      }
    } else if (f.kind === 'confident-liar') {
      for (const i of sample(rng, pool.length, f.count)) pool[i]!.behaviour = 'liar'
    }
  }
}

/** What a host advertises: its own words for the agent's kind of work (a sybil claims every kind). */
function advert (agent: AgentModel, types: typeof CATALOGUE, rng: Rng): LocalAgent {
  const type = types.find(t => t.name === agent.type)!
  const sybil = agent.behaviour === 'sybil'
  return {
    name: agent.name,
    description: sybil ? types.map(t => t.describe[0]).join('; ') : `${type.describe[pick(rng, type.describe.length)]!}; ${QUALIFIERS[pick(rng, QUALIFIERS.length)]!}, ${QUALIFIERS[pick(rng, QUALIFIERS.length)]!}`,
    skills: sybil ? types.map(t => t.skill) : [type.skill],
    inputSchema: { type: 'object' },
    outputSchema: { type: 'object' },
    costPerCall: agent.cost,
    latencyMs: Math.round(agent.latencyMs),
    capacity: agent.capacity,
    policy: []
  }
}
