/**
 * CP-WBFT's aggregation, as its authors' code runs it (Zheng et al., "Rethinking the Reliability
 * of Multi-agent System: A Perspective from Byzantine Fault Tolerance", AAAI 2026,
 * arXiv:2511.10400; github.com/Z1ivan/Byzantine-Fault-Tolerance-in-LLM-MAS at fa10ea4:
 * core/agents/llm_agent.py `participate_in_consensus`, core/consensus/consensus_engine.py
 * `_run_confidence_weighted_consensus`, core/topologies/*). A reference baseline: the simulator
 * and the benchmarks score it on the same signed answers as the mesh's own rule.
 *
 * 1. One exchange over a topology (its PCP path, `local_influence_mode = 'confidence'`, one
 *    round): agent i pools the (answer, confidence) of its neighbours, in ascending index, then its
 *    own; it adopts the answer with the highest MEAN confidence (ties: more supporters, then the
 *    first pooled) and takes that mean as its new confidence.
 * 2. Final: confidences grouped by answer in agent order; if they all sum to 0, plain majority.
 *    Per answer, only confidences ≥ 0.5 are kept (all of that answer's if none reach it); the
 *    answer with the highest mean kept confidence wins, ties by the count kept, then the first.
 *
 * It always picks an answer: it never escalates. A missing confidence counts 0 (their parser's
 * default). Agents are indexed in agent-id order, the same on every member.
 */
import { canonicalJson } from '../hash.ts'
import { compare, groupAnswers, type Embedder } from './equivalence.ts'
import type { AnswerBody, AnswerClass, EquivalenceRule, Json, Verdict } from './types.ts'

export const CP_WBFT_TOPOLOGIES = ['complete', 'star', 'chain', 'tree', 'random', 'layered'] as const
export type CpWbftTopology = typeof CP_WBFT_TOPOLOGIES[number]

/** Their threshold (consensus_engine.py's `confidence_threshold`, also prompt_probe_config's 0.5). */
const KEEP_AT = 0.5
/** Erdős–Rényi edge probability of the random topology, and the layered one's cross-layer edge share. */
const RANDOM_P = 0.3
const LAYER_LINKS = 0.3
const LAYERS = 3

/**
 * Undirected neighbour lists for n agents (indices 0…n−1), built as core/topologies/* build them.
 * `rng` (uniform [0, 1)) draws the random and layered topologies' edges.
 */
export function cpWbftNeighbours (topology: CpWbftTopology, n: number, rng: () => number = () => 0.5): number[][] {
  const adj: Array<Set<number>> = Array.from({ length: n }, () => new Set())
  const link = (a: number, b: number): void => { if (a !== b) { adj[a]!.add(b); adj[b]!.add(a) } }
  switch (topology) {
    case 'complete':
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) link(i, j)
      break
    case 'star':
      for (let i = 1; i < n; i++) link(0, i)
      break
    case 'chain':
      for (let i = 0; i + 1 < n; i++) link(i, i + 1)
      break
    case 'tree': // binary, root 0, filled breadth first
      for (let i = 1; i < n; i++) link(Math.floor((i - 1) / 2), i)
      break
    case 'random': {
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) if (rng() < RANDOM_P) link(i, j)
      // Components joined by one random edge each, as RandomTopology does to stay connected.
      const components = componentsOf(adj)
      for (let c = 1; c < components.length; c++) {
        const a = components[c - 1]!
        const b = components[c]!
        link(a[Math.floor(rng() * a.length)]!, b[Math.floor(rng() * b.length)]!)
      }
      break
    }
    case 'layered': {
      // n // 3 per layer, one more for the first n % 3 layers; each layer complete; for every pair
      // of layers int(|Li|·|Lj|·0.3) random cross edges.
      const layers: number[][] = []
      let next = 0
      for (let l = 0; l < LAYERS; l++) {
        const size = Math.floor(n / LAYERS) + (l < n % LAYERS ? 1 : 0)
        layers.push(Array.from({ length: size }, () => next++))
      }
      for (const layer of layers) for (let i = 0; i < layer.length; i++) for (let j = i + 1; j < layer.length; j++) link(layer[i]!, layer[j]!)
      for (let a = 0; a < layers.length; a++) {
        for (let b = a + 1; b < layers.length; b++) {
          const la = layers[a]!
          const lb = layers[b]!
          const edges = Math.floor(la.length * lb.length * LAYER_LINKS)
          for (let e = 0; e < edges; e++) link(la[Math.floor(rng() * la.length)]!, lb[Math.floor(rng() * lb.length)]!)
        }
      }
      break
    }
  }
  return adj.map(s => [...s].sort((a, b) => a - b))
}

function componentsOf (adj: ReadonlyArray<Set<number>>): number[][] {
  const seen = new Array<boolean>(adj.length).fill(false)
  const out: number[][] = []
  for (let s = 0; s < adj.length; s++) {
    if (seen[s]) continue
    const component: number[] = []
    const stack = [s]
    seen[s] = true
    while (stack.length > 0) {
      const v = stack.pop()!
      component.push(v)
      for (const w of adj[v]!) if (!seen[w]) { seen[w] = true; stack.push(w) }
    }
    out.push(component.sort((a, b) => a - b))
  }
  return out
}

export interface CpWbftOptions {
  topology?: CpWbftTopology
  /** Draws the random and layered topologies (default: a constant, so the graph is fixed). */
  rng?: () => number
  embed?: Embedder
}

/** Highest mean, then larger count, then the first key (Python's max over an insertion-ordered dict). */
function best (pool: ReadonlyMap<number, number[]>): number {
  let bestKey = -1
  let bestMean = -Infinity
  let bestCount = -1
  for (const [key, confs] of pool) {
    const mean = confs.reduce((s, c) => s + c, 0) / confs.length
    if (mean > bestMean || (mean === bestMean && confs.length > bestCount)) {
      bestKey = key
      bestMean = mean
      bestCount = confs.length
    }
  }
  return bestKey
}

/** CP-WBFT's verdict on these answers: always `decided` unless there are none. */
export function cpWbftVerdict (answers: readonly AnswerBody[], rule: EquivalenceRule, options: CpWbftOptions = {}): Verdict {
  // One answer per agent (its first by canonical JSON), agents in id order: index = position.
  const keyed = answers.map(a => ({ a, key: canonicalJson(a) })).sort((x, y) => compare(x.a.agent, y.a.agent) || compare(x.key, y.key))
  const byAgent = new Map<string, AnswerBody>()
  for (const { a } of keyed) if (!byAgent.has(a.agent)) byAgent.set(a.agent, a)
  if (byAgent.size === 0) return { kind: 'empty' }
  const agents = [...byAgent.keys()]
  const groups = groupAnswers([...byAgent.values()], rule, options.embed)
  const classOf = new Map<string, number>()
  groups.forEach((g, c) => { for (const a of g.agents) classOf.set(a, c) })
  const n = agents.length
  const cls = agents.map(a => classOf.get(a)!)
  const conf = agents.map(a => { const c = byAgent.get(a)!.confidence; return typeof c === 'number' && Number.isFinite(c) ? Math.min(1, Math.max(0, c)) : 0 })

  // 1. one exchange: neighbours in ascending index, then the agent itself
  const neighbours = cpWbftNeighbours(options.topology ?? 'complete', n, options.rng)
  const adopted = new Array<number>(n)
  const adoptedConf = new Array<number>(n)
  for (let i = 0; i < n; i++) {
    const pool = new Map<number, number[]>()
    for (const j of [...neighbours[i]!, i]) {
      const list = pool.get(cls[j]!)
      if (list === undefined) pool.set(cls[j]!, [conf[j]!])
      else list.push(conf[j]!)
    }
    const c = best(pool)
    adopted[i] = c
    const kept = pool.get(c)!
    adoptedConf[i] = kept.reduce((s, x) => s + x, 0) / kept.length
  }

  // 2. final: per answer the confidences ≥ 0.5 (all of them if none), highest mean, then count
  const byClass = new Map<number, number[]>()
  for (let i = 0; i < n; i++) {
    const list = byClass.get(adopted[i]!)
    if (list === undefined) byClass.set(adopted[i]!, [adoptedConf[i]!])
    else list.push(adoptedConf[i]!)
  }
  let winner: number
  if (adoptedConf.reduce((s, c) => s + c, 0) === 0) {
    // Counter.most_common(1): the most frequent, the first seen among equals.
    let most = -1
    winner = -1
    for (const [c, confs] of byClass) if (confs.length > most) { most = confs.length; winner = c }
  } else {
    const kept = new Map<number, number[]>()
    for (const [c, confs] of byClass) {
      const high = confs.filter(x => x >= KEEP_AT)
      kept.set(c, high.length > 0 ? high : confs)
    }
    winner = best(kept)
  }
  const classes: AnswerClass[] = [...byClass].map(([c, confs]) => ({
    value: groups[c]!.answers[0]! as Json,
    agents: agents.filter((_a, i) => adopted[i] === c),
    weight: confs.reduce((s, x) => s + x, 0)
  }))
  const total = classes.reduce((s, k) => s + k.weight, 0)
  const value = groups[winner]!.answers[0]! as Json
  return { kind: 'decided', value, classes: [...classes].sort((x, y) => y.weight - x.weight), total }
}
