/**
 * The YAML file of `agentmesh node --config FILE`:
 *
 * ```yaml
 * port: 7100                  # or listen: [/ip4/127.0.0.1/tcp/7100]
 * apiPort: 8100               # 0 turns the API off
 * data: ~/.agentmesh/node
 * bootstrap: [/ip4/127.0.0.1/tcp/7101/p2p/12D3KooW...]
 * ttlSeconds: 60
 * agents:
 *   - kind: arithmetic
 * ```
 */
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import type { AgentSpec } from './agents/agent.ts'
import { ConfigError, isMapping, parseAgentList, parseYaml } from './agents/config.ts'
import { suggest } from './suggest.ts'

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
}

const KEYS = ['port', 'listen', 'apiPort', 'data', 'bootstrap', 'ttlSeconds', 'agents', 'policy'] as const

export function loadNodeConfig (path: string): Partial<NodeConfig> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message} — check the path and file permissions`)
  }
  const doc = parseYaml(text, path)
  if (!isMapping(doc)) throw new ConfigError(`${path}: expected a mapping of settings (port, bootstrap, agents, …)`)
  const out: Partial<NodeConfig> = {}
  for (const [key, value] of Object.entries(doc)) {
    const at = `${path}: "${key}"`
    switch (key as typeof KEYS[number]) {
      case 'port': out.port = port(value, at, 1); break
      case 'apiPort': out.apiPort = port(value, at, 0); break
      case 'ttlSeconds':
        if (!Number.isInteger(value) || (value as number) < 2 || (value as number) > 86_400) throw new ConfigError(`${at} must be a whole number of seconds from 2 to 86400`)
        out.ttlSeconds = value as number
        break
      case 'data':
        if (typeof value !== 'string' || value === '') throw new ConfigError(`${at} must be a directory path`)
        out.data = value.replace(/^~(?=\/|$)/, homedir())
        break
      case 'listen':
      case 'bootstrap':
        if (!Array.isArray(value) || !value.every(v => typeof v === 'string' && v.startsWith('/'))) {
          throw new ConfigError(`${at} must be a list of multiaddrs such as /ip4/127.0.0.1/tcp/7100`)
        }
        out[key as 'listen' | 'bootstrap'] = value as string[]
        break
      case 'agents': out.agents = parseAgentList(value, path); break
      case 'policy':
        if (typeof value !== 'string' || value === '') throw new ConfigError(`${at} must name a selection policy, e.g. linucb`)
        out.policy = value
        break
      default: {
        const hint = suggest(key, KEYS)
        throw new ConfigError(`${path}: unknown setting "${key}"${hint !== undefined ? ` (did you mean "${hint}"?)` : ''} — allowed: ${KEYS.join(', ')}`)
      }
    }
  }
  return out
}

function port (value: unknown, at: string, min: number): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > 65535) throw new ConfigError(`${at} must be a port number from ${min} to 65535`)
  return value as number
}
