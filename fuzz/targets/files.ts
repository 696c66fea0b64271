/**
 * Text inputs: task specs (POST /tasks, `agentmesh submit`), network files (`--network FILE`)
 * and agents files (`--agents FILE`). Each target parses the way its caller does.
 */
import { readFileSync } from 'node:fs'
import YAML from 'yaml'
import { isDeepStrictEqual } from 'node:util'
import { ConfigError, parseAgentList, parseAgentsYaml, parseYaml } from '../../node/agents/config.ts'
import { NetworkFileError, parseNetworkSpec } from '../../protocols/network/index.ts'
import { MAX_NETWORK_FILE_BYTES } from '../../node/network/network-file.ts'
import { MAX_YAML_BYTES } from '../../node/api/limits.ts'
import { parseTask, TaskSpecError } from '../../protocols/task/index.ts'
import { textCase } from '../text.ts'
import { invariant, type Target } from '../target.ts'

const text = new TextDecoder()
/** Read once per command, not per message: the yaml package parses ~1 µs a byte, 128 KiB in ~150 ms. */
const FILE_SLOW_MS = 250
const file = (name: string): string => readFileSync(new URL(`../../node/agents/${name}`, import.meta.url), 'utf8')

export function taskTarget (): Target {
  const seeds = [file('demo-task.yaml'), file('demo-trusted-task.yaml'),
    'subtasks:\n  - id: a\n    capability: { skills: [x], policy: [p], schemaHash: "' + 'ab'.repeat(32) + '" }\n    redundancy: 3\n    trust: { rule: { kind: numeric, tolerance: 0.5 }, extra: 1, committee: 5 }\n    budget: 2\n    deadlineMs: 100\n  - id: b\n    capability: { text: t }\n    dependsOn: [a]\n    input: { v: { $from: a }, w: [1, { $from: a, path: "" }] }\n']
  return {
    name: 'task',
    about: 'parseYaml + parseTask: task DAGs as the API and `agentmesh submit` read them',
    errors: [ConfigError, TaskSpecError],
    generate: rng => textCase(seeds, rng),
    slowMs: FILE_SLOW_MS,
    check: input => {
      if (input.byteLength > MAX_YAML_BYTES) return // the API answers 413 before parsing; the CLI sends JSON
      const spec = parseTask(parseYaml(text.decode(input), 'task'))
      // Parsing what was accepted again gives the same spec.
      invariant(isDeepStrictEqual(parseTask(structuredClone(spec)), spec), 'a parsed task does not parse to itself')
    }
  }
}

export function networkFileTarget (): Target {
  const seeds = [
    'name: testnet\nbootstrap:\n  - /dns4/seed1.example.org/tcp/4001/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo\n  - /dnsaddr/bootstrap.example.org\nstun: [stun:stun.example.org:3478]\n',
    `name: lab\nbootstrap: [/ip4/10.250.0.2/tcp/4001/ws/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo]\npsk: ${'0f'.repeat(32)}\npublicRanges: [10.250.0.0/16, "fd00::/8"]\nprivateAddresses: true\n`
  ]
  return {
    name: 'network-file',
    about: 'parseNetworkSpec on a YAML network file, read as node/network/network-file.ts reads it',
    errors: [NetworkFileError],
    generate: rng => textCase(seeds, rng),
    slowMs: FILE_SLOW_MS,
    check: input => {
      const source = text.decode(input)
      if (source.length > MAX_NETWORK_FILE_BYTES) return // refused by size before parsing
      let doc: unknown
      try {
        doc = YAML.parse(source, { logLevel: 'error' }) // as the loader, without printing warnings
      } catch {
        return // refused as "not valid YAML" by the loader
      }
      const spec = parseNetworkSpec(doc, 'fuzz.yaml')
      const again = parseNetworkSpec({ ...spec, psk: spec.psk === undefined ? undefined : Buffer.from(spec.psk).toString('hex') }, 'again')
      invariant(isDeepStrictEqual({ ...again, psk: again.psk?.join() }, { ...spec, psk: spec.psk?.join() }), 'a parsed network file does not parse to itself')
    }
  }
}

export function agentsFileTarget (): Target {
  const seeds = [file('demo-agents.yaml'),
    'agents:\n  - kind: llm\n    name: writer\n    llm: { url: "http://127.0.0.1:8080/v1", model: m, apiKeyEnv: OPENAI_API_KEY, temperature: 0.2, maxTokens: 256, timeoutMs: 1000 }\n    description: writes\n    capacity: 2\n']
  return {
    name: 'agents-file',
    about: 'parseAgentsYaml: the agents file a node hosts',
    errors: [ConfigError],
    generate: rng => textCase(seeds, rng),
    slowMs: FILE_SLOW_MS,
    check: input => {
      const specs = parseAgentsYaml(text.decode(input), 'fuzz.yaml')
      invariant(isDeepStrictEqual(parseAgentList(structuredClone(specs), 'again'), specs), 'a parsed agents list does not parse to itself')
    }
  }
}
