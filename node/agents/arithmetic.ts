/**
 * `arithmetic`: evaluates a math expression with a small recursive-descent parser (never eval).
 *
 * Grammar, lowest precedence first:
 *   expr    := term (('+' | '-') term)*
 *   term    := unary (('*' | '/' | '%') unary)*
 *   unary   := ('+' | '-') unary | power
 *   power   := primary (('^' | '**') unary)?      right-associative: 2^3^2 = 2^9
 *   primary := number | constant | name '(' expr (',' expr)* ')' | '(' expr ')'
 *
 * Unary minus binds looser than `^`, as in written maths: -2^2 = -(2^2) = -4, while 2^-1 = 0.5.
 * `%` is the JavaScript remainder (sign of the dividend); round() rounds halves away from zero;
 * trigonometric functions work in radians.
 */
import { AgentInputError } from './agent.ts'
import type { Agent, AgentDescription, AgentSpec } from './agent.ts'
import { JSON_SCHEMA_DRAFT, deterministicAgent, stringField } from './base.ts'

export const MAX_EXPRESSION_LENGTH = 1000
export const MAX_NESTING_DEPTH = 64

const CONSTANTS: Record<string, number> = { pi: Math.PI, e: Math.E }

const roundHalfAwayFromZero = (x: number): number => Math.sign(x) * Math.round(Math.abs(x))

/** Each function with its arity: a number, or 'variadic' for one or more arguments. */
const FUNCTIONS: Record<string, { arity: number | 'variadic'; fn: (...args: number[]) => number }> = {
  sqrt: { arity: 1, fn: Math.sqrt },
  abs: { arity: 1, fn: Math.abs },
  floor: { arity: 1, fn: Math.floor },
  ceil: { arity: 1, fn: Math.ceil },
  round: { arity: 1, fn: roundHalfAwayFromZero },
  ln: { arity: 1, fn: Math.log },
  log10: { arity: 1, fn: Math.log10 },
  sin: { arity: 1, fn: Math.sin },
  cos: { arity: 1, fn: Math.cos },
  tan: { arity: 1, fn: Math.tan },
  min: { arity: 'variadic', fn: Math.min },
  max: { arity: 'variadic', fn: Math.max },
}

type Token =
  | { type: 'number'; value: number; pos: number; text: string }
  | { type: 'name'; name: string; pos: number; text: string }
  | { type: 'op'; op: string; pos: number; text: string }
  | { type: 'end'; pos: number; text: string }

const NUMBER = /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y
// Typographic operators people paste from documents.
const OPERATOR_ALIASES: Record<string, string> = { '×': '*', '·': '*', '÷': '/', '−': '-' }

function tokenize(src: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < src.length) {
    const ch = src[i]!
    if (/\s/.test(ch)) {
      i++
      continue
    }
    NUMBER.lastIndex = i
    const num = NUMBER.exec(src)
    if (num) {
      tokens.push({ type: 'number', value: Number(num[0]), pos: i, text: num[0] })
      i += num[0].length
      continue
    }
    NAME.lastIndex = i
    const name = NAME.exec(src)
    if (name) {
      tokens.push({ type: 'name', name: name[0].toLowerCase(), pos: i, text: name[0] })
      i += name[0].length
      continue
    }
    if (src.startsWith('**', i)) {
      tokens.push({ type: 'op', op: '^', pos: i, text: '**' })
      i += 2
      continue
    }
    const op = OPERATOR_ALIASES[ch] ?? ch
    if ('+-*/%^(),'.includes(op)) {
      tokens.push({ type: 'op', op, pos: i, text: ch })
      i++
      continue
    }
    throw new AgentInputError(
      `unexpected character ${JSON.stringify(ch)} at position ${i}; use numbers, + - * / % ^, parentheses, ` +
        `the constants pi and e, and the functions ${Object.keys(FUNCTIONS).join(', ')}`,
    )
  }
  tokens.push({ type: 'end', pos: src.length, text: 'end of expression' })
  return tokens
}

/** Rejects NaN and ±Infinity as soon as they appear, naming the step that produced them. */
function finite(value: number, what: string): number {
  if (!Number.isFinite(value)) {
    throw new AgentInputError(`${what} is not a finite number (${value}); check the expression's domain and magnitude`)
  }
  return value
}

export function evaluateExpression(src: string): number {
  if (src.length > MAX_EXPRESSION_LENGTH) {
    throw new AgentInputError(`expression is ${src.length} characters; send at most ${MAX_EXPRESSION_LENGTH}`)
  }
  const tokens = tokenize(src)
  let at = 0
  let depth = 0
  const peek = (): Token => tokens[at]!
  const isOp = (op: string): boolean => {
    const t = peek()
    return t.type === 'op' && t.op === op
  }
  const describeToken = (t: Token): string => (t.type === 'end' ? 'end of expression' : `'${t.text}' at position ${t.pos}`)
  const expect = (op: string, context: string): void => {
    if (!isOp(op)) throw new AgentInputError(`expected '${op}' ${context}, but found ${describeToken(peek())}`)
    at++
  }
  // Every recursion goes through enter(), so hostile input cannot blow the stack.
  const enter = (): void => {
    if (++depth > MAX_NESTING_DEPTH) {
      throw new AgentInputError(`expression nests deeper than ${MAX_NESTING_DEPTH} levels; simplify it`)
    }
  }

  function expr(): number {
    enter()
    let value = term()
    while (isOp('+') || isOp('-')) {
      const op = (tokens[at++] as { op: string }).op
      const right = term()
      value = finite(op === '+' ? value + right : value - right, `the ${op === '+' ? 'sum' : 'difference'}`)
    }
    depth--
    return value
  }

  function term(): number {
    let value = unary()
    while (isOp('*') || isOp('/') || isOp('%')) {
      const token = tokens[at++] as { op: string; pos: number }
      const right = unary()
      if (token.op === '*') {
        value = finite(value * right, 'the product')
      } else {
        if (right === 0) {
          const what = token.op === '/' ? 'division' : 'remainder (%)'
          throw new AgentInputError(`${what} by zero at position ${token.pos}; the divisor must not be 0`)
        }
        value = finite(token.op === '/' ? value / right : value % right, 'the quotient')
      }
    }
    return value
  }

  function unary(): number {
    if (isOp('-') || isOp('+')) {
      const negate = isOp('-')
      at++
      enter()
      const value = unary()
      depth--
      return negate ? -value : value
    }
    return power()
  }

  function power(): number {
    const base = primary()
    if (!isOp('^')) return base
    at++
    enter()
    const exponent = unary() // unary, so 2^-1 works and 2^3^2 recurses to the right
    depth--
    return finite(base ** exponent, 'the power')
  }

  function primary(): number {
    const t = peek()
    if (t.type === 'number') {
      at++
      return finite(t.value, `the number ${t.text}`)
    }
    if (t.type === 'op' && t.op === '(') {
      at++
      const value = expr()
      expect(')', `to close '(' at position ${t.pos}`)
      return value
    }
    if (t.type === 'name') {
      at++
      return isOp('(') ? call(t.name, t.pos) : constant(t.name, t.pos)
    }
    throw new AgentInputError(`expected a number, name or '(' but found ${describeToken(t)}`)
  }

  function constant(name: string, pos: number): number {
    const value = Object.hasOwn(CONSTANTS, name) ? CONSTANTS[name] : undefined
    if (value !== undefined) return value
    if (Object.hasOwn(FUNCTIONS, name)) {
      throw new AgentInputError(`function ${name} at position ${pos} needs parentheses, e.g. ${name}(2)`)
    }
    throw new AgentInputError(
      `unknown name '${name}' at position ${pos}; known constants are pi and e, ` +
        `known functions are ${Object.keys(FUNCTIONS).join(', ')}`,
    )
  }

  function call(name: string, pos: number): number {
    const fn = Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined
    if (!fn) {
      throw new AgentInputError(
        Object.hasOwn(CONSTANTS, name)
          ? `${name} at position ${pos} is a constant, not a function; write it without parentheses`
          : `unknown function '${name}' at position ${pos}; known functions are ${Object.keys(FUNCTIONS).join(', ')}`,
      )
    }
    at++ // '('
    const args = [expr()]
    while (isOp(',')) {
      at++
      args.push(expr())
    }
    expect(')', `to close the argument list of ${name}`)
    if (fn.arity !== 'variadic' && args.length !== fn.arity) {
      throw new AgentInputError(`${name} takes ${fn.arity} argument, but got ${args.length}`)
    }
    return finite(fn.fn(...args), `${name}(${args.join(', ')})`)
  }

  if (peek().type === 'end') throw new AgentInputError('expression is empty; send something like "2 * (3 + 4)"')
  const value = expr()
  if (peek().type !== 'end') {
    throw new AgentInputError(`unexpected ${describeToken(peek())}; is an operator missing?`)
  }
  return value + 0 // turns -0 into 0
}

const defaults: AgentDescription = {
  name: 'arithmetic',
  description:
    'Calculator that evaluates a math expression and returns its exact numeric value: add, subtract, ' +
    'multiply, divide, remainder, powers and roots, parentheses, pi and e, and functions such as sqrt, ' +
    'abs, round, floor, ceil, ln, log10, sin, cos, tan, min and max. Use it to compute, calculate or ' +
    'work out a sum, product, percentage or formula.',
  skills: ['math', 'arithmetic', 'calculator', 'calculate', 'evaluate-expression', 'numbers'],
  inputSchema: {
    $schema: JSON_SCHEMA_DRAFT,
    type: 'object',
    properties: {
      expression: {
        type: 'string',
        minLength: 1,
        maxLength: MAX_EXPRESSION_LENGTH,
        description: 'Infix expression; ^ is power (right-associative, binds tighter than unary minus).',
        examples: ['2 * (3 + 4) ^ 2', 'sqrt(2) / 2', 'max(1, 5, 3) % 4'],
      },
    },
    required: ['expression'],
    additionalProperties: false,
  },
  outputSchema: {
    $schema: JSON_SCHEMA_DRAFT,
    type: 'object',
    properties: { value: { type: 'number', description: 'The finite result.' } },
    required: ['value'],
    additionalProperties: false,
  },
  costPerCall: 0.1,
  latencyMs: 1,
  capacity: 64,
  policy: ['deterministic', 'no-network', 'stateless'],
}

export function createArithmeticAgent(spec: AgentSpec): Agent {
  return deterministicAgent(defaults, spec, (input) => ({
    value: evaluateExpression(
      stringField(input, 'expression', MAX_EXPRESSION_LENGTH, 'send e.g. { "expression": "2 * (3 + 4)" }'),
    ),
  }))
}
