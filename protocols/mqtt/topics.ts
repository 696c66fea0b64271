/**
 * The MQTT bridge's topic tree and names (issue 11), pure: what a topic means, and which mesh
 * agent an MQTT agent becomes. Every topic lives under a versioned prefix that names the network,
 * `agentmesh/v1/<network>`, so two networks can share a broker and a later layout can coexist:
 *
 * | topic (under the prefix)              | who publishes        | what                                              |
 * |---------------------------------------|----------------------|---------------------------------------------------|
 * | `agents/<client>/status`              | the client (+ will)  | retained `online` / `offline`                     |
 * | `agents/<client>/<agent>/advert`      | the client           | retained advert (JSON); empty payload = withdrawn |
 * | `agents/<client>/<agent>/request`     | the bridge           | a routed subtask, with response topic + correlation |
 * | `tasks/submit`                        | any client           | a task (the `POST /tasks` schema), with a response topic |
 * | `clients/<client>/errors`             | the bridge           | why something of that client's was refused        |
 *
 * Client ids and agent names are one topic level each, lower-case letters, digits, `-` and `_`:
 * no MQTT wildcards (`+`, `#`), no `/`, no `$`, and no `.`, so the mesh name below splits back
 * unambiguously. An MQTT agent joins the mesh as `<bridge peer id>/mqtt.<client>.<agent>`, a name
 * the VCV schema already accepts (`NAME_PATTERN`, at most 64 characters), so no peer needs a new
 * wire format to hold it.
 */
import { NAME_PATTERN } from '../capability/schema.ts'
import { NETWORK_NAME } from '../network/ids.ts'

/** One topic level of a client id or agent name. */
export const MQTT_NAME = /^[a-z0-9][a-z0-9_-]{0,29}$/
const MESH_PREFIX = 'mqtt.'

export type MqttTopic =
  | { kind: 'status', client: string }
  | { kind: 'advert', client: string, agent: string }
  | { kind: 'request', client: string, agent: string }
  | { kind: 'submit' }
  | { kind: 'errors', client: string }

export class MqttTopicError extends Error {
  override name = 'MqttTopicError'
}

/** `agentmesh/v1/<network>`: the prefix every bridge topic of `network` starts with. */
export function topicPrefix (network: string): string {
  if (!NETWORK_NAME.test(network)) throw new MqttTopicError(`"${network.slice(0, 40)}" is not a network name`)
  return `agentmesh/v1/${network}`
}

export function mqttTopic (prefix: string, t: MqttTopic): string {
  switch (t.kind) {
    case 'status': return `${prefix}/agents/${checkName(t.client, 'client id')}/status`
    case 'advert': return `${prefix}/agents/${checkName(t.client, 'client id')}/${checkName(t.agent, 'agent name')}/advert`
    case 'request': return `${prefix}/agents/${checkName(t.client, 'client id')}/${checkName(t.agent, 'agent name')}/request`
    case 'submit': return `${prefix}/tasks/submit`
    case 'errors': return `${prefix}/clients/${checkName(t.client, 'client id')}/errors`
  }
}

/** What a topic under `prefix` means, or undefined for any other topic (never throws). */
export function parseMqttTopic (prefix: string, topic: string): MqttTopic | undefined {
  if (topic.length > 256 || !topic.startsWith(`${prefix}/`)) return undefined
  const levels = topic.slice(prefix.length + 1).split('/')
  const [a, b, c, d] = levels
  const named = (...names: Array<string | undefined>): boolean => names.every(n => n !== undefined && MQTT_NAME.test(n))
  if (levels.length === 2 && a === 'tasks' && b === 'submit') return { kind: 'submit' }
  if (levels.length === 3 && a === 'agents' && c === 'status' && named(b)) return { kind: 'status', client: b! }
  if (levels.length === 3 && a === 'clients' && c === 'errors' && named(b)) return { kind: 'errors', client: b! }
  if (levels.length === 4 && a === 'agents' && named(b, c) && (d === 'advert' || d === 'request')) return { kind: d, client: b!, agent: c! }
  return undefined
}

/** The local name of an MQTT agent in the mesh (the part after `<bridge peer id>/`). */
export function meshAgentName (client: string, agent: string): string {
  const name = `${MESH_PREFIX}${checkName(client, 'client id')}.${checkName(agent, 'agent name')}`
  // 5 + 30 + 1 + 30 = 66 > 64: the pair must also fit the VCV's name limit.
  if (!NAME_PATTERN.test(name)) throw new MqttTopicError(`client id and agent name together are too long for a mesh name ("${name}", at most 64 characters)`)
  return name
}

/** The MQTT client and agent behind a mesh agent name, or undefined if it is not an MQTT agent's. */
export function parseMeshAgentName (name: string): { client: string, agent: string } | undefined {
  if (!name.startsWith(MESH_PREFIX) || !NAME_PATTERN.test(name)) return undefined
  const parts = name.slice(MESH_PREFIX.length).split('.')
  if (parts.length !== 2 || !parts.every(p => MQTT_NAME.test(p))) return undefined
  return { client: parts[0]!, agent: parts[1]! }
}

function checkName (name: string, what: string): string {
  if (!MQTT_NAME.test(name)) throw new MqttTopicError(`${what} "${name.slice(0, 40)}" must be 1–30 lower-case letters, digits, "-" or "_", starting with a letter or digit`)
  return name
}
