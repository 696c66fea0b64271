/** Every decoder of outside input, one target each. */
import { fixtures } from '../fixtures.ts'
import type { Target } from '../target.ts'
import { directTarget, recordTarget } from './capability.ts'
import { cborTarget } from './cbor.ts'
import { certificateJsonTarget, certificateTarget } from './certificate.ts'
import { answerTarget, committeeTarget, equivocationTarget, messageTarget } from './consensus.ts'
import { agentsFileTarget, networkFileTarget, taskTarget } from './files.ts'
import { capabilityTableTarget, consensusPeerTarget } from './machines.ts'
import { rpcTarget } from './rpc.ts'
import { mqttAdvertTarget, mqttBridgeTarget } from './mqtt.ts'

export async function allTargets (): Promise<Target[]> {
  const f = await fixtures()
  return [
    cborTarget(f), recordTarget(f), directTarget(f), answerTarget(f), committeeTarget(f), messageTarget(f),
    equivocationTarget(f), certificateTarget(f), certificateJsonTarget(f), rpcTarget(f),
    taskTarget(), networkFileTarget(), agentsFileTarget(), capabilityTableTarget(f), consensusPeerTarget(f),
    mqttAdvertTarget(), mqttBridgeTarget(f)
  ]
}
