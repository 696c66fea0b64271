/**
 * The YAML file of `agentmesh node --config FILE`:
 *
 * ```yaml
 * port: 7100                  # or listen: [/ip4/127.0.0.1/tcp/7100]
 * apiPort: 8100               # 0 turns the API off
 * apiListen: 0.0.0.0:8443     # instead of apiPort: another address (needs apiTlsCert and apiTlsKey)
 * apiAllowOrigins: [http://localhost:3000]   # web pages that may call the API
 * data: ~/.agentmesh/node
 * bootstrap: [/ip4/127.0.0.1/tcp/7101/p2p/12D3KooW...]
 * ttlSeconds: 60
 * agents:
 *   - kind: arithmetic
 * mqtt:                       # the MQTT bridge: agents in any language join through a broker
 *   url: mqtts://broker.example:8883
 *   ca: /etc/ssl/broker-ca.pem            # optional; credentials come from AGENTMESH_MQTT_USERNAME/PASSWORD
 * logLevel: info             # trace, debug, info, warn, error, fatal or silent
 * canaries:                   # spot-checks (on by default, with built-in cases; `canaries: off` turns them off)
 *   rate: 0.05
 *   cases:                    # added to the built-in ones, e.g. for llm and MQTT agents
 *     - { skills: [arithmetic], input: { expression: "2 + 2" }, answer: { value: 4 } }
 * ```
 */
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import type { AgentSpec } from './agents/agent.ts'
import { ConfigError, isMapping, parseAgentList, parseYaml } from './agents/config.ts'
import { suggest } from './suggest.ts'
import type { CanaryCase, CanaryConfig } from './services/canaries.ts'
import { validateRule, type EquivalenceRule, type Json } from '../protocols/consensus/index.ts'
import type { NetworkSpec } from '../protocols/network/index.ts'

export interface NodeConfig {
  port: number
  listen: string[]
  apiPort: number
  data: string
  bootstrap: string[]
  ttlSeconds: number
  agents: AgentSpec[]
  /** Selection policy by name (linucb, symphony, epsilon-greedy, greedy-similarity, round-robin, random). */
  policy?: string
  /** Spot-check settings over the defaults, or false (`canaries: off`). */
  canaries?: Partial<CanaryConfig> | false
  /** The network (default: local), as `--network` gives it: a name or a network file's path. */
  network?: NetworkSpec
  /** A public node: DHT server, relay, bootstrap for others. */
  public?: boolean
  /** Addresses others should dial. */
  announce?: string[]
  /** false: never try WebRTC hole punching, stay on relays (a network that blocks UDP). */
  holePunching?: boolean
  /** `--api-listen host:port`: the API's address instead of 127.0.0.1:apiPort (port 0: any free one). */
  apiListen?: string
  /** PEM files for HTTPS; required when apiListen is not loopback. */
  apiTlsCert?: string
  apiTlsKey?: string
  /** Origins whose web pages may call the API (`--api-allow-origin`). */
  apiAllowOrigins?: string[]
  /** The MQTT bridge (`--mqtt URL`). */
  mqtt?: MqttConfig
  /** What the log shows (`--log-level`): this level and above. */
  logLevel?: LogLevel
}

/** Log levels, most detailed first; `silent` logs nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]
export const isLogLevel = (value: unknown): value is LogLevel => (LOG_LEVELS as readonly unknown[]).includes(value)

/** The `mqtt:` setting: where the broker is and how to reach it (credentials from the environment). */
export interface MqttConfig {
  url: string
  /** Environment variables with the username and password (default AGENTMESH_MQTT_USERNAME / AGENTMESH_MQTT_PASSWORD). */
  usernameEnv?: string
  passwordEnv?: string
  /** PEM file of the broker's CA (mqtts://, wss://). */
  ca?: string
  /** Topic prefix instead of agentmesh/v1/<network>. */
  prefix?: string
}

const KEYS = ['port', 'listen', 'apiPort', 'data', 'bootstrap', 'ttlSeconds', 'agents', 'policy', 'canaries', 'network', 'public', 'announce', 'apiListen', 'apiTlsCert', 'apiTlsKey', 'apiAllowOrigins', 'mqtt', 'logLevel'] as const

export type NodeConfigFile = Partial<Omit<NodeConfig, 'network'>> & { network?: string }

export function loadNodeConfig (path: string): NodeConfigFile {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message} — check the path and file permissions`)
  }
  const doc = parseYaml(text, path)
  if (!isMapping(doc)) throw new ConfigError(`${path}: expected a mapping of settings (port, bootstrap, agents, …)`)
  const out: NodeConfigFile = {}
  for (const [key, value] of Object.entries(doc)) {
    const at = `${path}: "${key}"`
    switch (key as typeof KEYS[number]) {
      case 'port': out.port = port(value, at, 1); break
      case 'apiPort': out.apiPort = port(value, at, 0); break
      case 'ttlSeconds':
        if (!Number.isInteger(value) || (value as number) < 2 || (value as number) > 86_400) throw new ConfigError(`${at} must be a whole number of seconds from 2 to 86400`)
        out.ttlSeconds = value as number
        break
      case 'apiListen':
        if (typeof value !== 'string' || value === '') throw new ConfigError(`${at} must be host:port, e.g. 0.0.0.0:8443`)
        out.apiListen = value
        break
      case 'apiTlsCert':
      case 'apiTlsKey':
        if (typeof value !== 'string' || value === '') throw new ConfigError(`${at} must be the path of a PEM file`)
        out[key as 'apiTlsCert' | 'apiTlsKey'] = value.replace(/^~(?=\/|$)/, homedir())
        break
      case 'apiAllowOrigins':
        if (!Array.isArray(value) || !value.every(v => typeof v === 'string' && v !== '')) throw new ConfigError(`${at} must be a list of origins such as http://localhost:3000`)
        out.apiAllowOrigins = value as string[]
        break
      case 'data':
        if (typeof value !== 'string' || value === '') throw new ConfigError(`${at} must be a directory path`)
        out.data = value.replace(/^~(?=\/|$)/, homedir())
        break
      case 'network':
        if (typeof value !== 'string' || value === '') throw new ConfigError(`${at} must be a network name or the path of a network file`)
        out.network = value
        break
      case 'public':
        if (typeof value !== 'boolean') throw new ConfigError(`${at} must be true or false`)
        out.public = value
        break
      case 'announce':
      case 'listen':
      case 'bootstrap':
        if (!Array.isArray(value) || !value.every(v => typeof v === 'string' && v.startsWith('/'))) {
          throw new ConfigError(`${at} must be a list of multiaddrs such as /ip4/127.0.0.1/tcp/7100`)
        }
        out[key as 'listen' | 'bootstrap' | 'announce'] = value as string[]
        break
      case 'agents': out.agents = parseAgentList(value, path); break
      case 'policy':
        if (typeof value !== 'string' || value === '') throw new ConfigError(`${at} must name a selection policy, e.g. linucb`)
        out.policy = value
        break
      case 'canaries': out.canaries = canaries(value, at); break
      case 'mqtt': out.mqtt = mqttSetting(value, at); break
      case 'logLevel':
        if (!isLogLevel(value)) throw new ConfigError(`${at} must be one of ${LOG_LEVELS.join(', ')}`)
        out.logLevel = value
        break
      default: {
        const hint = suggest(key, KEYS)
        throw new ConfigError(`${path}: unknown setting "${key}"${hint !== undefined ? ` (did you mean "${hint}"?)` : ''} — allowed: ${KEYS.join(', ')}`)
      }
    }
  }
  return out
}

function canaries (value: unknown, at: string): Partial<CanaryConfig> | false {
  const example = 'e.g. { rate: 0.05, cases: [{ skills: [arithmetic], input: { expression: "2 + 2" }, answer: { value: 4 } }] }'
  if (value === false || value === 'off') return false
  if (!isMapping(value)) throw new ConfigError(`${at} must be off, or a mapping with rate, newcomerChecks, onDissent, qualify and cases (all optional; canaries are on by default), ${example}`)
  const extra = Object.keys(value).find(k => !['rate', 'cases', 'newcomerChecks', 'onDissent', 'qualify'].includes(k))
  if (extra !== undefined) throw new ConfigError(`${at} has no setting "${extra}" (it has rate, newcomerChecks, onDissent, qualify and cases)`)
  if (value.rate !== undefined && (typeof value.rate !== 'number' || !(value.rate >= 0 && value.rate <= 1))) throw new ConfigError(`${at}.rate must be a share of dispatches from 0 to 1`)
  const newcomers = value.newcomerChecks
  if (newcomers !== undefined && !(Number.isInteger(newcomers) && (newcomers as number) >= 0 && (newcomers as number) <= 100)) throw new ConfigError(`${at}.newcomerChecks must be a whole number from 0 to 100 (canaries every new agent gets first)`)
  for (const flag of ['onDissent', 'qualify'] as const) {
    if (value[flag] !== undefined && typeof value[flag] !== 'boolean') throw new ConfigError(`${at}.${flag} must be true or false`)
  }
  if (value.cases !== undefined && !Array.isArray(value.cases)) throw new ConfigError(`${at}.cases must be a list, ${example}`)
  const cases = ((value.cases ?? []) as unknown[]).map((c: unknown, i: number): CanaryCase => {
    const where = `${at}.cases[${i}]`
    if (!isMapping(c)) throw new ConfigError(`${where} must be a mapping with skills, input and answer`)
    const unknown = Object.keys(c).find(k => !['skills', 'input', 'answer', 'rule'].includes(k))
    if (unknown !== undefined) throw new ConfigError(`${where} has no field "${unknown}" (it has skills, input, answer, rule)`)
    if (!Array.isArray(c.skills) || c.skills.length === 0 || !c.skills.every(s => typeof s === 'string' && s !== '')) throw new ConfigError(`${where}.skills must list the skills an agent needs for this case`)
    if (!('answer' in c)) throw new ConfigError(`${where} needs the known answer`)
    let rule: EquivalenceRule | undefined
    if (c.rule !== undefined) {
      try {
        rule = validateRule(c.rule)
      } catch (err) {
        throw new ConfigError(`${where}.rule: ${(err as Error).message}`)
      }
    }
    return { skills: c.skills as string[], input: c.input ?? null, answer: c.answer as Json, ...(rule !== undefined ? { rule } : {}) }
  })
  return {
    ...(value.rate !== undefined ? { rate: value.rate as number } : {}),
    ...(newcomers !== undefined ? { newcomerChecks: newcomers as number } : {}),
    ...(value.onDissent !== undefined ? { onDissent: value.onDissent as boolean } : {}),
    ...(value.qualify !== undefined ? { qualify: value.qualify as boolean } : {}),
    cases
  }
}

function mqttSetting (value: unknown, at: string): MqttConfig {
  const example = 'e.g. { url: mqtt://127.0.0.1:1883 } (credentials go in AGENTMESH_MQTT_USERNAME and AGENTMESH_MQTT_PASSWORD)'
  if (typeof value === 'string' && value !== '') return { url: value }
  if (!isMapping(value)) throw new ConfigError(`${at} must be a broker URL or a mapping with url, ${example}`)
  const allowed = ['url', 'usernameEnv', 'passwordEnv', 'ca', 'prefix']
  const extra = Object.keys(value).find(k => !allowed.includes(k))
  if (extra !== undefined) {
    const why = extra === 'username' || extra === 'password' ? ' — credentials never live in config files: name the environment variable with usernameEnv/passwordEnv' : ''
    throw new ConfigError(`${at} has no setting "${extra}"${why} (it has ${allowed.join(', ')})`)
  }
  const out: MqttConfig = { url: '' }
  for (const key of allowed) {
    const v = value[key]
    if (v === undefined) continue
    if (typeof v !== 'string' || v === '') throw new ConfigError(`${at}.${key} must be a non-empty string`)
    ;(out as unknown as Record<string, string>)[key] = key === 'ca' ? v.replace(/^~(?=\/|$)/, homedir()) : v
  }
  if (out.url === '') throw new ConfigError(`${at}.url is missing, ${example}`)
  return out
}

function port (value: unknown, at: string, min: number): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > 65535) throw new ConfigError(`${at} must be a port number from ${min} to 65535`)
  return value as number
}
