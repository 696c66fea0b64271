/** Mutations for text formats (YAML files, JSON task specs): tree edits, byte damage, YAML tricks. */
import YAML from 'yaml'
import { Nested, Raw } from './cbor-writer.ts'
import { mutateBytes, mutateTree } from './mutate.ts'
import type { Rng } from './rng.ts'

const utf8 = new TextEncoder()

/** What a CBOR-only nasty value becomes in YAML: NaN, Infinity, deep nesting, or its label. */
function plainTree (v: unknown, depth = 0): unknown {
  if (v instanceof Raw) {
    if (v.label === 'NaN') return NaN
    if (v.label === 'Infinity') return Infinity
    if (v.label === '-Infinity') return -Infinity
    if (v.label.includes('depth bomb')) return deep(Math.min(v.bytes.byteLength, 2000))
    return v.label
  }
  if (v instanceof Nested) return plainTree(v.value, depth)
  if (v instanceof Uint8Array) return [...v]
  if (Array.isArray(v)) return v.map(x => plainTree(x, depth + 1))
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) Object.defineProperty(out, k, { value: plainTree(x, depth + 1), enumerable: true, writable: true, configurable: true })
    return out
  }
  return v
}

function deep (n: number): unknown {
  let v: unknown = 0
  for (let i = 0; i < n; i++) v = [v]
  return v
}

/** Hand-written YAML a parser and validator must survive. */
const TRICKS = [
  'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n',
  'name: a\nname: b\n',
  '<<: {name: x}\n',
  '? [complex, key]\n: value\n',
  '!!binary aGVsbG8=\n',
  '--- a\n--- b\n',
  '\ufeffname: x\n',
  '[' .repeat(3000) + ']'.repeat(3000),
  '{a: ' .repeat(1000) + '1' + '}'.repeat(1000),
  'x: !!float .nan\ny: -.inf\n',
  'x: 0x1F\ny: 0o17\nz: 1e400\n',
  '__proto__: {polluted: true}\n',
  'x: "\\ud800"\n',
  '- ' + 'a'.repeat(300_000) + '\n',
  'agents: &a [*a]\n',
  'subtasks: &s [{id: a, capability: {text: x}, input: *s}]\n'
]

export function textCase (seeds: readonly string[], rng: Rng): Uint8Array {
  const seed = rng.pick(seeds)
  const r = rng.float()
  if (r < 0.03) return utf8.encode(seed)
  if (r < 0.6) {
    const tree = plainTree(mutateTree(YAML.parse(seed) as unknown, rng))
    if (rng.chance(0.1)) { // written with an anchor and an alias
      try {
        return utf8.encode(YAML.stringify(withCycle(tree, rng)))
      } catch { // the yaml writer recurses: too deep for it
        return mutateBytes(utf8.encode(seed), rng)
      }
    }
    return utf8.encode(rng.chance(0.5) ? yamlOrJson(tree) : (JSON.stringify(tree) ?? 'null'))
  }
  if (r < 0.9) return mutateBytes(utf8.encode(seed), rng, seeds.map(s => utf8.encode(s)))
  if (r < 0.97) return utf8.encode(rng.pick(TRICKS))
  return rng.bytes(rng.size(256))
}

/** The yaml package's writer recurses; past its stack the JSON form (also YAML) is written instead. */
function yamlOrJson (tree: unknown): string {
  try {
    return YAML.stringify(tree)
  } catch {
    return JSON.stringify(tree) ?? 'null'
  }
}

/** Makes one container hold another that encloses it (or itself): YAML can say that, JSON cannot. */
function withCycle (tree: unknown, rng: Rng): unknown {
  const containers: object[] = []
  const stack: unknown[] = [tree]
  while (stack.length > 0 && containers.length < 10_000) {
    const v = stack.pop()
    if (typeof v !== 'object' || v === null) continue
    containers.push(v)
    stack.push(...Object.values(v))
  }
  if (containers.length === 0) return tree
  const at = rng.pick(containers)
  const target = containers[rng.int(containers.indexOf(at) + 1)] // the root, an ancestor or itself
  if (Array.isArray(at)) at.push(target)
  else {
    const keys = Object.keys(at)
    ;(at as Record<string, unknown>)[keys.length > 0 && rng.chance(0.7) ? rng.pick(keys) : 'x'] = target
  }
  return tree
}
