// Real Ed25519 hosts and capability tables for protocol tests.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { ed25519Signer, ed25519Verifier } from '../../node/network/crypto.ts'
import type { Effect } from '../../protocols/effects.ts'
import { mulberry32 } from '../../protocols/random.ts'
import type { Signer } from '../../protocols/identity.ts'
import { CapabilityTable, type CapabilityTableInit, type LocalAgent, type TableEvent } from '../../protocols/capability/index.ts'

export async function makeSigners (n: number): Promise<Signer[]> {
  const out: Signer[] = []
  for (let i = 0; i < n; i++) out.push(ed25519Signer(await generateKeyPair('Ed25519')))
  return out
}

export const verifier = ed25519Verifier()

/** A small deterministic PRNG, so tests never touch Math.random. */
export const seeded = mulberry32

export function table (signer: Signer, init: Partial<CapabilityTableInit> = {}): CapabilityTable {
  return new CapabilityTable({ signer, verifier, random: seeded(1), ...init })
}

export function localAgent (name: string, extra: Partial<LocalAgent> = {}): LocalAgent {
  return {
    name,
    description: `agent ${name} does useful work`,
    skills: ['demo', name],
    inputSchema: { type: 'object', properties: { x: { type: 'number' } } },
    outputSchema: { type: 'object' },
    costPerCall: 1,
    latencyMs: 10,
    capacity: 4,
    policy: ['deterministic'],
    ...extra
  }
}

export function broadcasts (effects: Array<Effect<TableEvent>>): Uint8Array[] {
  return effects.flatMap(e => e.type === 'broadcast' ? [e.data] : [])
}

export function events (effects: Array<Effect<TableEvent>>): TableEvent[] {
  return effects.flatMap(e => e.type === 'event' ? [e.event] : [])
}

/**
 * Delivers `send` effects between tables until none are left: an in-memory network of direct links.
 * Returns how many messages were delivered.
 */
export function pump (tables: Map<string, CapabilityTable>, queue: Array<{ from: string, effects: Array<Effect<TableEvent>> }>, now: number): number {
  let delivered = 0
  while (queue.length > 0) {
    const { from, effects } = queue.shift()!
    for (const e of effects) {
      if (e.type !== 'send') continue
      const target = tables.get(e.to)
      if (target === undefined) continue
      delivered++
      queue.push({ from: e.to, effects: target.receiveDirect(from, e.data, now).effects })
    }
  }
  return delivered
}
