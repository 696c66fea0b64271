/** Argument parsing on node:util parseArgs, with errors that say what to type instead. */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { suggest } from '../suggest.ts'

export class UsageError extends Error {
  override name = 'UsageError'
}

type Options = NonNullable<ParseArgsConfig['options']>

export function parse<O extends Options> (command: string, argv: string[], options: O, positionals = false) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: positionals })
  } catch (err) {
    const message = (err as Error).message
    const unknown = /Unknown option '(--?[^']+)'/.exec(message)?.[1]
    if (unknown !== undefined) {
      const guess = suggest(unknown.replace(/^-+/, ''), Object.keys(options))
      throw new UsageError(`${command}: unknown option ${unknown}${guess !== undefined ? ` — did you mean --${guess}?` : ''} (see agentmesh help ${command})`)
    }
    throw new UsageError(`${command}: ${message.replace(/\. To specify.*$/s, '')} (see agentmesh help ${command})`)
  }
}

export function integer (command: string, name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${command}: --${name} must be a whole number from ${min} to ${max}, not "${value}"`)
  }
  return n
}

/** A flag that takes one of a few words; the mistake quoted (bounded) with the words to use. */
export function oneOf<T extends string> (command: string, name: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${command}: --${name} must be one of ${allowed.join(', ')}, not ${JSON.stringify(value.slice(0, 40))}`)
  }
  return value as T
}
