/**
 * An endorsement: the agent's own Ed25519 signature over its reply, carried inside the answer its
 * host signs. An agent behind a bridge (MQTT) is not a peer: its host signs for it, which vouches
 * only that the host received this reply from the client it says. An agent with its own key
 * signs the exact reply bytes it sent, bound to the subtask, the input hash and its agent id, so
 * a certificate then also proves that the holder of that key produced this answer: the host
 * cannot change it, and whoever knows the agent's key can check it offline.
 *
 * Signed message (UTF-8, then the raw reply bytes):
 * `agentmesh/v1 endorsed reply\n<subtask>\n<inputHash>\n<agent id>\n<reply bytes>`.
 * The reply is JSON with `output` (and `confidence`), which must equal the answer (and its
 * confidence) the host signed.
 */
import { canonicalJson } from '../hash.ts'
import { peerIdFromEd25519, type Verifier } from '../identity.ts'

export interface Endorsement {
  /** The agent's raw Ed25519 public key (32 bytes). */
  key: Uint8Array
  /** Its signature over `endorsementMessage(…)` (64 bytes). */
  sig: Uint8Array
  /** The reply exactly as the agent sent it. */
  reply: Uint8Array
}

/** Largest reply an endorsement carries (the answer holding it is at most 30 KiB). */
export const MAX_ENDORSED_REPLY_BYTES = 14 * 1024

export function endorsementMessage (subtask: string, inputHash: string, agent: string, reply: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(`agentmesh/v1 endorsed reply\n${subtask}\n${inputHash}\n${agent}\n`)
  const out = new Uint8Array(head.byteLength + reply.byteLength)
  out.set(head)
  out.set(reply, head.byteLength)
  return out
}

/** Whether `e` is the agent key's signature over a reply that says exactly `answer` (and `confidence`). Never throws. */
export function checkEndorsement (e: Endorsement, at: { subtask: string, inputHash: string, agent: string, answer: unknown, confidence?: number | undefined }, verifier: Verifier): boolean {
  if (e.key.byteLength !== 32 || e.sig.byteLength !== 64 || e.reply.byteLength > MAX_ENDORSED_REPLY_BYTES) return false
  if (!verifier.verify(peerIdFromEd25519(e.key), endorsementMessage(at.subtask, at.inputHash, at.agent, e.reply), e.sig)) return false
  let reply: unknown
  try {
    reply = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(e.reply))
  } catch {
    return false
  }
  if (typeof reply !== 'object' || reply === null || !('output' in reply)) return false
  const r = reply as { output: unknown, confidence?: unknown }
  return canonicalJson(r.output) === canonicalJson(at.answer) && (r.confidence ?? undefined) === at.confidence
}
