/**
 * An agent that lives behind an MQTT broker: its description is the client's advert, its calls
 * go out through the bridge. Hosted like any other agent, so the host's accounting (capacity,
 * queue, latency for beacons), deadlines and signatures apply to it unchanged.
 */
import type { LocalAgent } from '../../protocols/capability/index.ts'
import type { Endorsement } from '../../protocols/consensus/index.ts'
import { AgentInputError, type Agent, type AgentResult, type CallInfo } from './agent.ts'

/** Sends one call to the MQTT agent and resolves with its reply (a failure says why). */
export type MqttCall = (input: unknown, call: CallInfo, signal: AbortSignal | undefined) => Promise<
  | { ok: true, output: unknown, confidence?: number, endorsement?: Endorsement }
  | { ok: false, kind: 'input' | 'failed', error: string }
>

export function mqttAgent (description: LocalAgent, call: MqttCall): Agent {
  const frozen = structuredClone(description)
  return {
    describe: () => structuredClone(frozen),
    async handle (input: unknown, signal?: AbortSignal, info?: CallInfo): Promise<AgentResult> {
      signal?.throwIfAborted()
      const reply = await call(input, info ?? { deadlineMs: frozen.latencyMs * 10 }, signal)
      if (reply.ok) return { output: reply.output, ...(reply.confidence === undefined ? {} : { confidence: reply.confidence }), ...(reply.endorsement === undefined ? {} : { endorsement: reply.endorsement }) }
      if (reply.kind === 'input') throw new AgentInputError(reply.error)
      throw new Error(reply.error)
    }
  }
}
