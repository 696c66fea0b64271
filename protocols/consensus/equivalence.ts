/**
 * Grouping answers into equivalence classes, per subtask rule (see `EquivalenceRule`).
 *
 * Every honest committee member must compute identical classes from the same evidence, whatever
 * order it arrived in, so inputs are first sorted by agent id, then by the canonical JSON of the
 * answer, and only then clustered. Exact rules (`json`, `text`) group by a key. The tolerance
 * rules (`numeric`, `embedding`) are greedy: in that sorted order, each answer joins the first
 * class (oldest first) whose representative — the class's first member in sorted order — is
 * within tolerance, else it starts a new class. Comparing to the representative, not to any
 * member, keeps classes from chaining far beyond the tolerance.
 */
import { canonicalJson } from '../hash.ts'
import { typeName } from '../json.ts'
import type { EquivalenceRule, Json } from './types.ts'

/** Turns a string answer into a vector; must be deterministic and the same on every member. */
export type Embedder = (text: string) => Float32Array | readonly number[]

export interface AnswerEntry {
  agent: string
  answer: Json
}

/** One class: supporters sorted by agent id, `answers[i]` being `agents[i]`'s answer. */
export interface AnswerGroup {
  agents: string[]
  answers: Json[]
}

export class RuleError extends Error {
  override name = 'RuleError'
}

/** Checks a rule from the network; returns a fresh copy or throws a RuleError saying why. */
export function validateRule (rule: unknown): EquivalenceRule {
  if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) {
    throw new RuleError(`equivalence rule must be an object, got ${typeName(rule)}`)
  }
  const o = rule as Record<string, unknown>
  const only = (keys: string[]): void => {
    for (const k of Object.keys(o)) if (!keys.includes(k)) throw new RuleError(`${String(o.kind)} rule has unknown field "${k}"`)
  }
  switch (o.kind) {
    case 'json':
    case 'text':
      only(['kind'])
      return { kind: o.kind }
    case 'numeric':
      only(['kind', 'tolerance'])
      if (typeof o.tolerance !== 'number' || !Number.isFinite(o.tolerance) || o.tolerance < 0) {
        throw new RuleError(`numeric rule needs a finite tolerance >= 0, got ${typeName(o.tolerance)}`)
      }
      return { kind: 'numeric', tolerance: o.tolerance }
    case 'embedding':
      only(['kind', 'threshold'])
      if (typeof o.threshold !== 'number' || !(o.threshold >= -1 && o.threshold <= 1)) {
        throw new RuleError(`embedding rule needs a cosine threshold in -1..1, got ${typeName(o.threshold)}`)
      }
      return { kind: 'embedding', threshold: o.threshold }
    default:
      throw new RuleError(`equivalence rule kind must be json, numeric, text or embedding, got ${typeName(o.kind)}`)
  }
}

/** Lower-cased NFKC with whitespace trimmed and collapsed: the `text` rule's notion of "same". */
export function normaliseText (s: string): string {
  return s.normalize('NFKC').toLowerCase().trim().replace(/\s+/gu, ' ')
}

/**
 * Groups answers into classes, independent of input order. An agent listed more than once keeps
 * only its first answer in sorted order (canonical JSON), so no agent is ever in two classes.
 * Classes come out in order of their representatives. Throws a RuleError for a bad rule, an
 * embedding rule without `embed`, or an embedder returning unusable vectors.
 */
export function groupAnswers (answers: readonly AnswerEntry[], rule: EquivalenceRule, embed?: Embedder): AnswerGroup[] {
  const checked = validateRule(rule)
  if (checked.kind === 'embedding' && embed === undefined) {
    throw new RuleError('the embedding rule needs an embedder, and every member must use the same one')
  }
  const entries = sortedUnique(answers)
  if (checked.kind === 'json' || checked.kind === 'text') {
    const byKey = new Map<string, AnswerGroup>()
    for (const e of entries) {
      const key = checked.kind === 'text' && typeof e.answer === 'string' ? `t${normaliseText(e.answer)}` : `j${e.cjson}`
      const group = byKey.get(key)
      if (group === undefined) byKey.set(key, { agents: [e.agent], answers: [e.answer] })
      else { group.agents.push(e.agent); group.answers.push(e.answer) }
    }
    return [...byKey.values()]
  }
  const close = checked.kind === 'numeric' ? numericClose(checked.tolerance) : embeddingClose(checked.threshold, embed!)
  const groups: Array<AnswerGroup & { rep: Sorted }> = []
  for (const e of entries) {
    const group = groups.find(g => close(g.rep, e))
    if (group === undefined) groups.push({ rep: e, agents: [e.agent], answers: [e.answer] })
    else { group.agents.push(e.agent); group.answers.push(e.answer) }
  }
  return groups.map(g => ({ agents: g.agents, answers: g.answers }))
}

interface Sorted extends AnswerEntry {
  cjson: string
}

function sortedUnique (answers: readonly AnswerEntry[]): Sorted[] {
  const sorted = answers.map(a => ({ agent: a.agent, answer: a.answer, cjson: canonicalJson(a.answer) }))
    .sort((a, b) => compare(a.agent, b.agent) || compare(a.cjson, b.cjson))
  return sorted.filter((e, i) => i === 0 || sorted[i - 1]!.agent !== e.agent)
}

/** Code-unit order: the same on every host, unlike localeCompare. */
export function compare (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

type Close = (rep: Sorted, e: Sorted) => boolean

/** Finite numbers within the tolerance; anything else (including NaN, ±Infinity) by canonical JSON. */
function numericClose (tolerance: number): Close {
  const isNumber = (v: Json): v is number => typeof v === 'number' && Number.isFinite(v)
  return (rep, e) => isNumber(rep.answer) && isNumber(e.answer)
    ? Math.abs(rep.answer - e.answer) <= tolerance
    : rep.cjson === e.cjson
}

/** Strings with cosine >= threshold (identical strings always); non-strings by canonical JSON. */
function embeddingClose (threshold: number, embed: Embedder): Close {
  const cache = new Map<string, { v: ArrayLike<number>, sq: number }>()
  const vector = (s: string): { v: ArrayLike<number>, sq: number } => {
    let hit = cache.get(s)
    if (hit === undefined) {
      const v = embed(s)
      if (v.length === 0) throw new RuleError('the embedder returned an empty vector')
      let sq = 0
      for (let i = 0; i < v.length; i++) {
        const x = v[i]!
        if (!Number.isFinite(x)) throw new RuleError('the embedder returned a non-finite value')
        sq += x * x
      }
      hit = { v, sq }
      cache.set(s, hit)
    }
    return hit
  }
  return (rep, e) => {
    if (typeof rep.answer !== 'string' || typeof e.answer !== 'string') return rep.cjson === e.cjson
    if (rep.answer === e.answer) return true
    const a = vector(rep.answer)
    const b = vector(e.answer)
    if (a.v.length !== b.v.length) throw new RuleError(`the embedder returned vectors of ${a.v.length} and ${b.v.length} dimensions`)
    // A zero vector has no direction: it is similar to nothing but its own text.
    if (a.sq === 0 || b.sq === 0) return false
    let dot = 0
    for (let i = 0; i < a.v.length; i++) dot += a.v[i]! * b.v[i]!
    // √(|a|²|b|²) rather than |a|·|b|: equal vectors then score exactly 1.
    const product = a.sq * b.sq
    const norms = Number.isFinite(product) && product > 0 ? Math.sqrt(product) : Math.sqrt(a.sq) * Math.sqrt(b.sq)
    return dot / norms >= threshold
  }
}
