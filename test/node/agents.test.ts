import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import fc from 'fast-check'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { AgentInputError } from '../../node/agents/agent.ts'
import type { Agent } from '../../node/agents/agent.ts'
import { agentKinds, createAgent, defaultAgentSpecs, demoKinds } from '../../node/agents/registry.ts'
import { ConfigError, loadAgentsFile, parseAgentsYaml } from '../../node/agents/config.ts'
import { NAME_PATTERN } from '../../protocols/capability/schema.ts'
import { splitSentences } from '../../node/agents/text.ts'

const run = async (agent: Agent, input: unknown): Promise<unknown> => {
  const result = await agent.handle(input)
  expect(result.confidence).toBe(1)
  return result.output
}
/** Asserts the call fails with an AgentInputError whose message matches. */
const rejects = async (agent: Agent, input: unknown, message: RegExp): Promise<void> => {
  const error = await agent.handle(input).then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(AgentInputError)
  expect((error as Error).message).toMatch(message)
}

describe('every built-in agent', () => {
  for (const kind of demoKinds) {
    it(`${kind}: describe() is complete and self-consistent`, () => {
      const d = createAgent({ kind }).describe()
      expect(d.name).toBe(kind)
      expect(d.name).toMatch(NAME_PATTERN)
      expect(d.description.length).toBeGreaterThan(100)
      expect(d.skills.length).toBeGreaterThanOrEqual(3)
      expect(d.costPerCall).toBeGreaterThanOrEqual(0)
      expect(d.latencyMs).toBeGreaterThan(0)
      expect(Number.isInteger(d.capacity) && d.capacity >= 1).toBe(true)
      expect(d.policy).toEqual(expect.arrayContaining(['deterministic', 'no-network']))
      for (const schema of [d.inputSchema, d.outputSchema]) {
        expect(schema['$schema']).toBe('https://json-schema.org/draft/2020-12/schema')
        expect(schema['type']).toBe('object')
        expect(schema['additionalProperties']).toBe(false)
        const properties = Object.keys(schema['properties'] as object)
        for (const field of schema['required'] as string[]) expect(properties).toContain(field)
      }
    })

    it(`${kind}: rejects non-objects and unknown fields, and honours an aborted signal`, async () => {
      const agent = createAgent({ kind })
      await rejects(agent, null, /expects a JSON object/)
      await rejects(agent, [1], /got an array/)
      await rejects(agent, { bogus: 1 }, /does not accept field "bogus"; allowed fields are/)
      const controller = new AbortController()
      controller.abort()
      const error = await agent.handle({}, controller.signal).then(() => undefined, (e: unknown) => e)
      expect((error as Error).name).toBe('AbortError')
    })
  }

  it('applies spec overrides over the defaults, and describe() returns a copy', () => {
    const agent = createAgent({
      kind: 'sort', name: 'sorter', description: 'Sorts.', skills: ['x'], costPerCall: 2, latencyMs: 7, capacity: 3, policy: ['p'],
    })
    const d = agent.describe()
    expect(d).toMatchObject({ name: 'sorter', description: 'Sorts.', skills: ['x'], costPerCall: 2, latencyMs: 7, capacity: 3, policy: ['p'] })
    d.skills.push('mutated')
    expect(agent.describe().skills).toEqual(['x'])
  })

  it('output keys match each output schema', async () => {
    const inputs: Record<string, unknown> = {
      arithmetic: { expression: '1+1' },
      'unit-convert': { value: 1, from: 'm', to: 'cm' },
      'text-stats': { text: 'Hi there.' },
      sort: { items: [2, 1] },
      'json-transform': { data: { a: 1 } },
      summarize: { text: 'One. Two. Three.' },
    }
    for (const spec of defaultAgentSpecs()) {
      const agent = createAgent(spec)
      const output = (await run(agent, inputs[spec.kind])) as object
      expect(Object.keys(output).sort()).toEqual(Object.keys(agent.describe().outputSchema['properties'] as object).sort())
    }
  })
})

describe('registry', () => {
  it('lists six demo kinds (plus llm) and builds one default spec of each demo kind', () => {
    expect(demoKinds).toEqual(['arithmetic', 'unit-convert', 'text-stats', 'sort', 'json-transform', 'summarize'])
    expect(agentKinds).toEqual([...demoKinds, 'llm'])
    expect(defaultAgentSpecs()).toEqual(demoKinds.map((kind) => ({ kind })))
  })

  it('names the known kinds for an unknown kind, including prototype names', () => {
    expect(() => createAgent({ kind: 'weather' })).toThrow(/unknown agent kind "weather"; known kinds are arithmetic, unit-convert, text-stats, sort, json-transform, summarize, llm/)
    expect(() => createAgent({ kind: 'constructor' })).toThrow(/unknown agent kind/)
  })
})

describe('arithmetic', () => {
  const agent = createAgent({ kind: 'arithmetic' })
  const value = async (expression: string) => ((await run(agent, { expression })) as { value: number }).value

  it.each([
    ['2 * (3 + 4) ^ 2', 98],
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['10 / 4', 2.5],
    ['10 - 4 - 3', 3],
    ['7 % 3', 1],
    ['-7 % 3', -1], // JavaScript remainder: sign of the dividend
    ['-2^2', -4], // unary minus binds looser than ^, as in written maths
    ['(-2)^2', 4],
    ['2^-1', 0.5],
    ['2^3^2', 512], // right-associative
    ['2**10', 1024],
    ['--3', 3],
    ['+3', 3],
    ['1.5e3 + .5', 1500.5],
    ['2.5E-1', 0.25],
    ['sqrt(16) + abs(-3)', 7],
    ['floor(2.7) + ceil(2.1)', 5],
    ['round(2.5)', 3],
    ['round(-2.5)', -3], // halves round away from zero
    ['ln(e)', 1],
    ['log10(1000)', 3],
    ['min(4, 2, 8)', 2],
    ['max(4, 2, 8) - max(1)', 7],
    ['cos(0) + sin(0) + tan(0)', 1],
    ['PI', Math.PI],
    ['2 * pi', 2 * Math.PI],
    ['3 × 4 − 12 ÷ 4', 9],
    ['  1\n+\t2 ', 3],
  ])('%s = %d', async (expression, expected) => {
    expect(await value(expression)).toBe(expected)
  })

  it('returns 0, not -0', async () => {
    expect(Object.is(await value('-0'), 0)).toBe(true)
  })

  it.each([
    ['1 / 0', /division by zero at position 2/],
    ['5 % (2 - 2)', /remainder \(%\) by zero/],
    ['sqrt(-1)', /sqrt\(-1\) is not a finite number/],
    ['ln(0)', /not a finite number/],
    ['1e400', /not a finite number/],
    ['10^400', /the power is not a finite number/],
    ['', /expression is empty/],
    ['2 +', /expected a number.*end of expression/],
    ['(1 + 2', /expected '\)' to close '\(' at position 0/],
    ['1 2', /unexpected '2' at position 2; is an operator missing/],
    ['x + 1', /unknown name 'x'.*known constants are pi and e/],
    ['foo(1)', /unknown function 'foo'.*sqrt, abs/],
    ['pi(2)', /constant, not a function/],
    ['sqrt', /needs parentheses/],
    ['sqrt(1, 2)', /sqrt takes 1 argument, but got 2/],
    ['2 $ 3', /unexpected character "\$" at position 2/],
    ['process.exit(1)', /unexpected character "\."|unknown/],
    ['constructor(1)', /unknown function 'constructor'/],
    ['1 + '.repeat(300) + '1', /send at most 1000/],
    ['('.repeat(70) + '1' + ')'.repeat(70), /nests deeper than 64 levels/],
    ['-'.repeat(70) + '1', /nests deeper than 64 levels/],
  ])('rejects %j', async (expression, message) => {
    await rejects(agent, { expression }, message)
  })

  it('rejects a missing or non-string expression', async () => {
    await rejects(agent, {}, /field "expression" must be a string, but got nothing/)
    await rejects(agent, { expression: 42 }, /must be a string, but got a number/)
  })

  it('matches JavaScript on random integer sums and products', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom('+', '-', '*'), fc.integer({ min: -1000, max: 1000 })), { minLength: 1, maxLength: 12 }),
        async (terms) => {
          const expression = terms.map(([op, n], i) => (i === 0 ? `${n}` : ` ${op} ${n}`)).join('')
          // Reference: products bind tighter than sums.
          let total = 0
          let product = terms[0]![1]
          let sign = 1
          for (const [op, n] of terms.slice(1)) {
            if (op === '*') product *= n
            else {
              total += sign * product
              sign = op === '+' ? 1 : -1
              product = n
            }
          }
          expect(await value(expression)).toBe(total + sign * product + 0)
        },
      ),
    )
  })
})

describe('unit-convert', () => {
  const agent = createAgent({ kind: 'unit-convert' })
  const convert = async (value: number, from: string, to: string) =>
    (await run(agent, { value, from, to })) as { value: number; unit: string }

  it.each([
    [100, 'F', 'C', 340 / 9, 'C'],
    [212, 'fahrenheit', 'celsius', 100, 'C'],
    [0, 'C', 'F', 32, 'F'],
    [0, '°C', 'K', 273.15, 'K'],
    [0, 'kelvin', 'C', -273.15, 'C'],
    [-40, 'C', 'F', -40, 'F'],
    [1, 'GiB', 'B', 1073741824, 'B'],
    [1, 'KiB', 'bytes', 1024, 'B'],
    [1, 'GB', 'MB', 1000, 'MB'],
    [1, 'TiB', 'GiB', 1024, 'GiB'],
    [1, 'mi', 'ft', 5280, 'ft'],
    [1, 'mile', 'km', 1.609344, 'km'],
    [12, 'inches', 'foot', 1, 'ft'],
    [3, 'yd', 'ft', 9, 'ft'],
    [2.5, 'Kilometres', 'METERS', 2500, 'm'],
    [1, 'lb', 'g', 453.59237, 'g'],
    [16, 'ounces', 'pounds', 1, 'lb'],
    [1, 't', 'kilograms', 1000, 'kg'],
    [1500, 'mg', 'g', 1.5, 'g'],
    [1, 'h', 'min', 60, 'min'],
    [2, 'days', 'hours', 48, 'h'],
    [1, 'week', 's', 604800, 's'],
    [250, 'ms', 'seconds', 0.25, 's'],
    [1, 'gallon', 'cups', 16, 'cup'],
    [1, 'litre', 'ml', 1000, 'ml'],
    [5, 'm', 'm', 5, 'm'],
  ])('%d %s → %s', async (value, from, to, expected, unit) => {
    const out = await convert(value, from, to)
    expect(out.unit).toBe(unit)
    expect(out.value).toBeCloseTo(expected, 10)
  })

  it('keeps real digits and snaps float noise', async () => {
    expect((await convert(100, 'F', 'C')).value).toBe(37.77777777777778)
    expect((await convert(1, 'ft', 'in')).value).toBe(12) // 0.3048 / 0.0254 is 12.000000000000002 in floating point
    expect((await convert(1, 'kg', 'lb')).value).toBeCloseTo(2.20462262185, 10)
  })

  it('rejects conversions between dimensions, naming both', async () => {
    await rejects(agent, { value: 1, from: 'kg', to: 'm' }, /cannot convert kg \(mass\) to m \(length\)/)
    await rejects(agent, { value: 1, from: 'C', to: 'GB' }, /\(temperature\) to GB \(data\)/)
  })

  it('rejects unknown units, impossible temperatures and bad fields', async () => {
    await rejects(agent, { value: 1, from: 'parsec', to: 'm' }, /unknown unit "parsec" in "from"; supported units are length: mm cm m km/)
    await rejects(agent, { value: -1, from: 'K', to: 'C' }, /below absolute zero/)
    await rejects(agent, { value: -300, from: 'C', to: 'F' }, /below absolute zero/)
    await rejects(agent, { value: '5', from: 'm', to: 'ft' }, /field "value" must be a finite number/)
    await rejects(agent, { value: 5, from: 'm' }, /field "to" must be a string/)
    await rejects(agent, { value: 1e308, from: 'TiB', to: 'B' }, /too large/)
  })

  const dimensions: Record<string, string[]> = {
    length: ['mm', 'cm', 'm', 'km', 'in', 'ft', 'yd', 'mi'],
    mass: ['mg', 'g', 'kg', 'lb', 'oz', 't'],
    time: ['ms', 's', 'min', 'h', 'day', 'week'],
    data: ['B', 'KB', 'MB', 'GB', 'TB', 'KiB', 'MiB', 'GiB', 'TiB'],
    volume: ['ml', 'l', 'gal', 'cup'],
    temperature: ['C', 'F', 'K'],
  }
  const unitPair = fc.constantFrom(...Object.values(dimensions)).chain((units) => fc.tuple(fc.constantFrom(...units), fc.constantFrom(...units)))

  it('round-trips within floating-point precision', async () => {
    await fc.assert(
      fc.asyncProperty(unitPair, fc.double({ min: 0, max: 1e6, noNaN: true }), async ([from, to], x) => {
        const there = await convert(x, from, to)
        const back = await convert(there.value, to, from)
        expect(Math.abs(back.value - x)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(x)))
      }),
    )
  })
})

describe('text-stats', () => {
  const agent = createAgent({ kind: 'text-stats' })

  it('counts a two-paragraph text exactly', async () => {
    const text = 'The cat sat on the mat. The cat was happy!\n\nDogs bark. Dr. Smith agrees, e.g. with cats.'
    expect(await run(agent, { text })).toEqual({
      characters: 88,
      words: 19, // "e.g." is the words e and g
      sentences: 4, // no split after "Dr." or "e.g."
      paragraphs: 2,
      averageWordLength: 3.26, // 62 letters / 19 words
      readingTimeSeconds: 4.8, // 19 / 238 * 60 = 4.79
      topWords: [
        { word: 'cat', count: 2 },
        { word: 'agrees', count: 1 },
        { word: 'bark', count: 1 },
        { word: 'cats', count: 1 },
        { word: 'dogs', count: 1 },
      ],
    })
  })

  it('handles empty text, contractions, hyphens and code points', async () => {
    expect(await run(agent, { text: '' })).toEqual({
      characters: 0, words: 0, sentences: 0, paragraphs: 0, averageWordLength: 0, readingTimeSeconds: 0, topWords: [],
    })
    const out = (await run(agent, { text: "Don't panic: a well-known héllo 👍" })) as { words: number; characters: number; topWords: unknown }
    expect(out.words).toBe(5) // Don't, panic, a, well-known, héllo
    expect(out.characters).toBe(33) // the emoji is one code point
    expect(out.topWords).toEqual([
      { word: 'héllo', count: 1 },
      { word: 'panic', count: 1 },
      { word: 'well-known', count: 1 },
    ])
  })

  it('breaks count ties alphabetically and skips stopwords and numbers', async () => {
    const out = (await run(agent, { text: 'pear apple the THE and 42 pear apple fig kiwi lime mango' })) as { topWords: unknown }
    expect(out.topWords).toEqual([
      { word: 'apple', count: 2 },
      { word: 'pear', count: 2 },
      { word: 'fig', count: 1 },
      { word: 'kiwi', count: 1 },
      { word: 'lime', count: 1 },
    ])
  })

  it('rejects non-string text', async () => {
    await rejects(agent, { text: ['a'] }, /field "text" must be a string, but got an array/)
  })
})

describe('sort', () => {
  const agent = createAgent({ kind: 'sort' })
  const sort = async (input: object) => (await run(agent, input)) as { items: (number | string)[]; count: number }

  it('sorts numbers and strings with a fixed comparison', async () => {
    expect(await sort({ items: [3, 1, 2] })).toEqual({ items: [1, 2, 3], count: 3 })
    expect(await sort({ items: [3, 1, 2], order: 'desc' })).toEqual({ items: [3, 2, 1], count: 3 })
    expect((await sort({ items: ['b', 'a', 'B', 'ä'] })).items).toEqual(['B', 'a', 'b', 'ä']) // code units, not locale
    expect((await sort({ items: ['10', '9', '100'] })).items).toEqual(['10', '100', '9'])
    expect((await sort({ items: [-1.5, 1e9, 0, -1e9] })).items).toEqual([-1e9, -1.5, 0, 1e9])
    expect(await sort({ items: [] })).toEqual({ items: [], count: 0 })
  })

  it('puts numbers before strings in both orders', async () => {
    expect((await sort({ items: ['b', 2, 'a', 1] })).items).toEqual([1, 2, 'a', 'b'])
    expect((await sort({ items: ['b', 2, 'a', 1], order: 'desc' })).items).toEqual([2, 1, 'b', 'a'])
  })

  it('orders strings naturally with numeric', async () => {
    expect((await sort({ items: ['file10', 'file2', 'file1'], numeric: true })).items).toEqual(['file1', 'file2', 'file10'])
    expect((await sort({ items: ['10', '9', '100', '09'], numeric: true })).items).toEqual(['9', '09', '10', '100'])
    expect((await sort({ items: ['v1.10', 'v1.9', 'v1.9.1'], numeric: true, order: 'desc' })).items).toEqual(['v1.10', 'v1.9.1', 'v1.9'])
  })

  it('removes duplicates with unique, keeping numbers and strings distinct', async () => {
    expect(await sort({ items: [3, 1, 3, 'a', '1', 'a', 1], unique: true })).toEqual({ items: [1, 3, '1', 'a'], count: 4 })
  })

  it('is stable', async () => {
    const out = await sort({ items: JSON.parse('[0, -0, 0]') })
    expect(out.items.map((x) => Object.is(x, -0))).toEqual([false, true, false])
    const desc = await sort({ items: JSON.parse('[-0, 0]'), order: 'desc' })
    expect(desc.items.map((x) => Object.is(x, -0))).toEqual([true, false])
  })

  it('rejects bad input', async () => {
    await rejects(agent, { items: 'abc' }, /field "items" must be an array/)
    await rejects(agent, { items: [1, { a: 1 }] }, /items\[1\] must be a finite number or a string, but got an object/)
    await rejects(agent, { items: [1, null] }, /items\[1\].*got null/)
    await rejects(agent, { items: [1], order: 'up' }, /field "order" must be "asc" or "desc"/)
    await rejects(agent, { items: [1], unique: 'yes' }, /field "unique" must be true or false/)
  })

  it('returns a sorted permutation of its input', async () => {
    const item = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 4 }))
    await fc.assert(
      fc.asyncProperty(fc.array(item, { maxLength: 40 }), fc.constantFrom('asc', 'desc'), async (items, order) => {
        const out = (await sort({ items, order })).items
        const key = (x: number | string) => `${typeof x}:${Object.is(x, -0) ? '-0' : x}`
        expect(out.map(key).sort()).toEqual(items.map(key).sort())
        const sign = order === 'asc' ? 1 : -1
        for (let i = 1; i < out.length; i++) {
          const [a, b] = [out[i - 1]!, out[i]!]
          if (typeof a === 'string' && typeof b === 'number') throw new Error('string before number')
          if (typeof a === typeof b) expect(sign * (a < b ? -1 : a > b ? 1 : 0)).toBeLessThanOrEqual(0)
        }
      }),
    )
  })
})

describe('json-transform', () => {
  const agent = createAgent({ kind: 'json-transform' })
  const transform = async (input: object) => ((await run(agent, input)) as { result: unknown }).result
  const users = { users: [{ id: 1, name: 'Ada', email: 'a@x' }, { id: 2, name: 'Bo', email: 'b@x' }, 'not an object'], total: 2 }

  it('picks, omits and renames on an object', async () => {
    expect(await transform({ data: { a: 1, b: 2, c: 3 }, pick: ['a', 'c', 'zz'] })).toEqual({ a: 1, c: 3 })
    expect(await transform({ data: { a: 1, b: 2, c: 3 }, omit: ['b'] })).toEqual({ a: 1, c: 3 })
    expect(await transform({ data: { a: 1, b: 2 }, rename: { a: 'b', b: 'a' } })).toEqual({ b: 1, a: 2 })
    expect(await transform({ data: [1, 'x', null] })).toEqual([1, 'x', null])
  })

  it('applies a JSON Pointer first, then reshapes each object of an array', async () => {
    expect(await transform({ data: users, path: '/users', pick: ['id', 'name'], rename: { id: 'userId' } })).toEqual([
      { userId: 1, name: 'Ada' },
      { userId: 2, name: 'Bo' },
      'not an object',
    ])
    expect(await transform({ data: users, path: '/users/1/name' })).toBe('Bo')
    expect(await transform({ data: users, path: '' })).toEqual(users)
    expect(await transform({ data: { 'a/b': { 'm~n': 7 } }, path: '/a~1b/m~0n' })).toBe(7)
    expect(await transform({ data: { '': 5 }, path: '/' })).toBe(5)
  })

  it('explains pointers that do not resolve', async () => {
    await rejects(agent, { data: users, path: 'users' }, /must be a JSON Pointer starting with "\/"/)
    await rejects(agent, { data: users, path: '/people' }, /the object at \/ has no key "people"/)
    await rejects(agent, { data: users, path: '/users/5' }, /\/users is an array of 3 items, and "5" is not one of its indexes/)
    await rejects(agent, { data: users, path: '/users/01' }, /"01" is not one of its indexes/)
    await rejects(agent, { data: users, path: '/total/x' }, /\/total is a number \(2\), which has no key "x"/)
    await rejects(agent, { data: {}, path: '/a~2' }, /bare "~"/)
  })

  it('guards against prototype pollution', async () => {
    const data = JSON.parse('{"__proto__": {"polluted": true}, "a": 1, "nested": {"constructor": {"prototype": 1}, "b": 2}}')
    const result = (await transform({ data })) as Record<string, unknown>
    expect(result).toEqual({ a: 1, nested: { b: 2 } })
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype)
    expect(Object.hasOwn(result, '__proto__')).toBe(false)
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
    await rejects(agent, { data: { a: 1 }, rename: { a: '__proto__' } }, /may not use the key "__proto__"/)
    await rejects(agent, JSON.parse('{"data": {"a": 1}, "rename": {"__proto__": "x"}}'), /may not use the key "__proto__"/)
    await rejects(agent, { data: { a: 1 }, pick: ['constructor'] }, /"pick" may not use the key "constructor"/)
    await rejects(agent, { data: {}, path: '/__proto__/polluted' }, /may not use the key "__proto__"/)
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
  })

  it('rejects bad options', async () => {
    await rejects(agent, { pick: ['a'] }, /field "data" is required/)
    await rejects(agent, { data: 5, pick: ['a'] }, /need an object or an array of objects, but the selected value is a number/)
    await rejects(agent, { data: { a: 1, b: 2 }, rename: { a: 'c', b: 'c' } }, /maps both "a" and "b" to "c"/)
    await rejects(agent, { data: {}, pick: 'a' }, /field "pick" must be an array of key names/)
    await rejects(agent, { data: {}, rename: { a: 1 } }, /"rename.a" must be a non-empty string/)
    await rejects(agent, { data: {}, path: 3 }, /field "path" must be a JSON Pointer string/)
  })
})

describe('summarize', () => {
  const agent = createAgent({ kind: 'summarize' })
  const text = 'Cats are great pets. Dogs are loyal. Cats and dogs can live together. The weather is nice today. Many people love cats.'

  it('picks the highest-scoring sentences in original order', async () => {
    // cats ×3 weighs 1, dogs ×2 weighs 2/3, others 1/3: scores 5/3, 1, 7/3, 1, 2.
    expect(await run(agent, { text })).toEqual({
      summary: 'Cats and dogs can live together. Many people love cats.',
      sentences: ['Cats and dogs can live together.', 'Many people love cats.'],
      ratio: 0.4622, // 55 / 119 characters
    })
    expect(await run(agent, { text, sentences: 3 })).toMatchObject({
      sentences: ['Cats are great pets.', 'Cats and dogs can live together.', 'Many people love cats.'],
    })
  })

  it('breaks ties by position and returns everything when asked for more', async () => {
    const plain = 'Alpha beta. Gamma delta! Epsilon zeta?'
    expect(await run(agent, { text: plain, sentences: 2 })).toMatchObject({ sentences: ['Alpha beta.', 'Gamma delta!'] })
    expect(await run(agent, { text: plain, sentences: 20 })).toMatchObject({ summary: plain, ratio: 1 })
  })

  it('does not split on abbreviations, initials or decimals', () => {
    expect(splitSentences('Dr. Smith met Mr. Jones, e.g. at 3.30 p.m. today. J. R. R. Tolkien wrote it. Apples etc. are fruit!\n\nTitle line\nnext line')).toEqual([
      'Dr. Smith met Mr. Jones, e.g. at 3.30 p.m. today.',
      'J. R. R. Tolkien wrote it.',
      'Apples etc. are fruit!',
      'Title line next line',
    ])
    expect(splitSentences('"Really?" she asked. Yes... it is. (Done.) End')).toEqual(['"Really?" she asked.', 'Yes... it is.', '(Done.)', 'End'])
  })

  it('rejects bad input', async () => {
    await rejects(agent, { text: '   ' }, /no sentences to summarize/)
    await rejects(agent, { text: 5 }, /field "text" must be a string/)
    for (const sentences of [0, 21, 1.5, '2']) {
      await rejects(agent, { text, sentences }, /field "sentences" must be a whole number from 1 to 20/)
    }
  })
})

describe('agents file', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-agents-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  const write = (name: string, text: string): string => {
    const path = join(dir, name)
    writeFileSync(path, text)
    return path
  }
  const fails = (text: string, message: RegExp) => {
    const path = write('bad.yaml', text)
    expect(() => loadAgentsFile(path)).toThrow(ConfigError)
    expect(() => loadAgentsFile(path)).toThrow(message)
  }

  it('loads a valid file with overrides', () => {
    const path = write('ok.yaml', [
      'agents:',
      '  - kind: arithmetic',
      '    name: calc',
      '    costPerCall: 0.5',
      '    capacity: 4',
      '    skills: [math, sums]',
      '  - kind: arithmetic   # a second calculator needs its own name',
      '    name: calc-2',
      '    latencyMs: 0',
      '  - kind: sort',
      '    description: Sorts things.',
      '    policy: [deterministic]',
    ].join('\n'))
    expect(loadAgentsFile(path)).toEqual([
      { kind: 'arithmetic', name: 'calc', costPerCall: 0.5, capacity: 4, skills: ['math', 'sums'] },
      { kind: 'arithmetic', name: 'calc-2', latencyMs: 0 },
      { kind: 'sort', description: 'Sorts things.', policy: ['deterministic'] },
    ])
  })

  it('ships a demo file with the six kinds that all build', () => {
    const specs = loadAgentsFile(fileURLToPath(new URL('../../node/agents/demo-agents.yaml', import.meta.url)))
    expect(specs.map((s) => s.kind).sort()).toEqual([...demoKinds].sort())
    expect(specs.map((s) => createAgent(s).describe().name)).toEqual(['calc', 'unit-convert', 'text-stats', 'sort', 'json-transform', 'tldr'])
  })

  it('reports unreadable files', () => {
    expect(() => loadAgentsFile(join(dir, 'missing.yaml'))).toThrow(/cannot read agents file .*missing\.yaml: ENOENT.* — check the path/)
    expect(() => loadAgentsFile(dir)).toThrow(/cannot read agents file .*EISDIR/)
  })

  it('reports YAML syntax errors with their line, and the file', () => {
    fails('agents:\n  - kind: arithmetic\n    name: [calc\n', /bad\.yaml: YAML syntax error at line \d+, column \d+/)
    fails('agents:\n  - kind: arithmetic\n    kind: sort\n', /bad\.yaml: YAML syntax error at line 3, column 5: Map keys must be unique/)
  })

  it('needs a mapping with a non-empty agents list', () => {
    fails('', /expected a mapping with an "agents" list/)
    fails('- kind: arithmetic\n', /expected a mapping with an "agents" list/)
    fails('agent:\n  - kind: sort\n', /expected a mapping with an "agents" list/)
    fails('agents:\n  - kind: sort\nextra: 1\n', /unknown top-level field "extra" — only "agents" is allowed/)
    fails('agents: arithmetic\n', /"agents" must be a list of entries/)
    fails('agents: []\n', /the "agents" list is empty — add at least one entry/)
  })

  it('names the entry and lists the known kinds or allowed fields', () => {
    fails('agents:\n  - kind: sort\n  - kind: weather\n', /bad\.yaml: agents\[1\]: unknown kind string "weather" — use one of arithmetic, unit-convert, text-stats, sort, json-transform, summarize/)
    fails('agents:\n  - name: calc\n', /agents\[0\]: missing "kind"/)
    fails('agents:\n  - arithmetic\n', /agents\[0\]: expected a mapping such as "kind: arithmetic"/)
    fails('agents:\n  - kind: sort\n    cost: 1\n', /agents\[0\]: unknown field "cost" \(did you mean "costPerCall"\?\) — allowed fields are kind, name, description, skills, costPerCall, latencyMs, capacity, policy, llm/)
    fails('agents:\n  - kind: sort\n    costpercall: 1\n', /unknown field "costpercall" \(did you mean "costPerCall"\?\)/)
  })

  it('checks types and ranges', () => {
    const entry = (line: string) => `agents:\n  - kind: sort\n    ${line}\n`
    fails(entry('name: My Sorter'), /agents\[0\]: "name" string "My Sorter" is invalid — use 1 to 64 lower-case letters/)
    fails(entry('name: 42'), /"name" number 42 is invalid/)
    fails(entry(`name: ${'a'.repeat(65)}`), /"name" .* is invalid/)
    fails(entry('costPerCall: -1'), /"costPerCall" must be a finite number ≥ 0, but got number -1/)
    fails(entry('costPerCall: "0.5"'), /"costPerCall" must be a finite number ≥ 0, but got string "0.5"/)
    fails(entry('latencyMs: .inf'), /"latencyMs" must be a finite number/)
    fails(entry('capacity: 0'), /"capacity" must be a whole number ≥ 1/)
    fails(entry('capacity: 1.5'), /"capacity" must be a whole number ≥ 1/)
    fails(entry('skills: math'), /"skills" must be a list of at most 32 non-empty strings/)
    fails(entry(`policy: [ok, ${'x'.repeat(65)}]`), /"policy" must be a list/)
    fails(entry('description: ""'), /"description" must be a non-empty string/)
  })

  it('rejects duplicate names, which default to the kind', () => {
    fails('agents:\n  - kind: sort\n  - kind: arithmetic\n  - kind: sort\n', /agents\[2\]: name "sort" is already used by agents\[0\] \(names default to the kind\) — give each agent a distinct "name"/)
    fails('agents:\n  - kind: sort\n    name: x\n  - kind: summarize\n    name: x\n', /agents\[1\]: name "x" is already used by agents\[0\]/)
  })

  it('parses text directly, naming the given source', () => {
    expect(parseAgentsYaml('agents:\n  - kind: summarize\n', 'inline')).toEqual([{ kind: 'summarize' }])
    expect(() => parseAgentsYaml('agents: []', 'inline')).toThrow(/^inline: /)
    // Size is checked before any parsing: a huge file is refused at once, with the limit.
    const long = `agents:\n  - kind: summarize\n    description: "${'x'.repeat(128 * 1024)}"\n`
    expect(() => parseAgentsYaml(long, 'big.yaml')).toThrow(/^big\.yaml: an agents file may be at most 128 KiB/)
  })
})
