/** The attacks by name: each runs in the rogue process until `until` and reports what it sent. */
import type { AttackName, AttackSettings, Target } from './protocol.ts'
import { sleep, Tally, type Rogue } from './rogue.ts'
import { badSignatureGossip, junkGossip, oversizedGossip, replayedGossip } from './gossip-attacks.ts'
import { rpcSpam } from './rpc-spam.ts'
import { equivocation, sybil10k, sybilKeys } from './sybil.ts'
import { maliciousPage, slowBodyHttp } from './http-attacks.ts'

export interface AttackContext {
  rogue: Rogue
  targets: Target[]
  settings: AttackSettings
  /** Wall-clock ms at which the attack stops. */
  until: number
}

export const attacks: Record<AttackName, (ctx: AttackContext) => Promise<Tally>> = {
  baseline: async ({ until }) => { await sleep(until - Date.now()); return new Tally() },
  'junk-gossip': junkGossip,
  'oversized-gossip': oversizedGossip,
  'replayed-gossip': replayedGossip,
  'bad-signature-gossip': badSignatureGossip,
  'rpc-spam': rpcSpam,
  'sybil-10k': sybil10k,
  'sybil-keys': sybilKeys,
  equivocation,
  'slow-body-http': slowBodyHttp,
  'malicious-page': maliciousPage
}

/** Attacks that go through the HTTP API, not the rogue's libp2p host: no ban to measure. */
export const HTTP_ATTACKS: ReadonlySet<AttackName> = new Set(['slow-body-http', 'malicious-page'])
