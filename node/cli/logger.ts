/**
 * The log of a running peer (pino): one JSON object a line when stdout is not a terminal or --json
 * is given, readable lines on a terminal. Every record carries `event` (the names `agentmesh node`
 * always printed), so a script that parses each stdout line and looks at `.event` keeps working.
 *
 * @example
 * ```ts
 * const log = makeLogger({ level: 'info' })
 * logEvent(log, 'warn', 'task-reroute', { task: 't1', reason: 'timeout' }, 'task t1 rerouted: timeout')
 * ```
 */
import { pino, type Level, type Logger } from 'pino'
import { prettyFactory } from 'pino-pretty'
import { LOG_LEVELS, type LogLevel } from '../config.ts'
import type { Say } from './progress.ts'

export { LOG_LEVELS, type LogLevel }

export interface LogOptions {
  level: LogLevel
  /** JSON lines; by default, unless the destination is a terminal. */
  json?: boolean
  /** 1 (stdout, the default), 2 (stderr) or any object with write() (tests). */
  to?: 1 | 2 | { write: (line: string) => unknown }
}

/** A pino logger that knows whether it writes JSON. */
export type EventLogger = Logger & { readonly json: boolean }

export function makeLogger (options: LogOptions): EventLogger {
  const to = options.to ?? 1
  const tty = to === 1 ? process.stdout.isTTY === true : to === 2 ? process.stderr.isTTY === true : false
  const json = options.json ?? !tty
  const settings = { level: options.level, base: null }
  let logger: Logger
  if (json) {
    // Level names, not numbers: `jq 'select(.level == "warn")'` reads better than 40.
    const formatters = { level: (label: string) => ({ level: label }) }
    const destination = typeof to === 'number' ? pino.destination({ dest: to, sync: true }) : to
    logger = pino({ ...settings, formatters }, destination)
  } else {
    // Pretty-printed here, synchronously: no worker thread, no line lost at exit.
    const prettify = prettyFactory({
      colorize: tty,
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'event',
      messageFormat: (log, key) => typeof log[key] === 'string' ? `${String(log['event'])}: ${log[key] as string}` : String(log['event'])
    })
    const out = typeof to === 'number' ? (to === 1 ? process.stdout : process.stderr) : to
    logger = pino(settings, { write: (line: string) => { out.write(prettify(brief(line))) } })
  }
  return Object.assign(logger, { json })
}

/** A record with a message shows only that on a terminal (its fields repeat it); one without shows its fields. */
function brief (line: string): string | Record<string, unknown> {
  const record = JSON.parse(line) as Record<string, unknown>
  return typeof record['msg'] === 'string' ? { level: record['level'], time: record['time'], event: record['event'], msg: record['msg'] } : record
}

/** Pino's own keys: a field named so would shadow (or forge) the record's level, time or message. */
const RESERVED = new Set(['level', 'time', 'msg'])

/** One event: its name, its fields and, for humans, a line of text. */
export function logEvent (log: Logger, level: Level, event: string, detail: Record<string, unknown>, text?: string): void {
  if (!log.isLevelEnabled(level)) return
  const fields: Record<string, unknown> = { event }
  for (const [k, v] of Object.entries(detail)) fields[RESERVED.has(k) ? `${k}_` : k] = v
  if (text === undefined) log[level](fields)
  else log[level](fields, clip(text, 2000))
}

/** Levels of the events `say` reports (the rest are info). */
const SAY_LEVELS: Record<string, Level> = {
  'dial-failed': 'warn',
  'bootstrap-lost': 'warn',
  'agents-reload-failed': 'error',
  'mqtt-refused': 'warn',
  'mqtt-disconnected': 'warn',
  'mqtt-error': 'warn',
  'mqtt-publish-failed': 'warn',
  'mqtt-subscribe-refused': 'error',
  'mqtt-subscribe-failed': 'error',
  'mqtt-pins-not-saved': 'error',
  'mqtt-pins-damaged': 'error',
  'service-error': 'error'
}

/** The `say(event, detail, text)` that progress, reload and the MQTT bridge call, as log records. */
export function sayTo (log: Logger): Say {
  return (event, detail, text) => { logEvent(log, SAY_LEVELS[event] ?? 'info', event, detail, text) }
}

/** Characters that could end or forge a line on a terminal: controls, line separators, bidi overrides. */
const UNSAFE = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu

/**
 * A string from outside made safe to log: control characters escaped (no forged lines, no
 * terminal escapes), and at most `max` characters, saying how many were cut.
 */
export function clip (value: string, max = 300): string {
  const cut = value.length > max ? `${value.slice(0, max)}…(+${value.length - max} chars)` : value
  return cut.replace(UNSAFE, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
