/** Attacks on the gossip topics: junk, oversized, replayed and wrongly signed messages. */
import { encodeDirect, directLimits } from '../../../protocols/capability/index.ts'
import { corruptSignature, forgeNewerVersion, signCalculator, calculatorDescription } from './records.ts'
import { openRaw, paced, publishRaw, randomBytes, Tally, type Rogue } from './rogue.ts'
import type { AttackContext } from './attacks.ts'

/**
 * Random bytes (1 B – 2 KiB, every message unique so no dedup saves the receiver) on every topic:
 * a burst first, then a steady flood.
 */
export async function junkGossip ({ rogue, until, settings }: AttackContext): Promise<Tally> {
  const tally = new Tally()
  const junk = (): Uint8Array => randomBytes(1 + Math.floor(Math.random() * 2048))
  await Promise.all(rogue.topics.flatMap(topic => Array.from({ length: settings.gossipBurst }, async () => {
    await tally.send(async () => { await publishRaw(rogue, topic, junk()) })
  })))
  tally.detail.burst = tally.sent
  await paced(settings.gossipRate, until, async i => {
    const topic = rogue.topics[i % rogue.topics.length]!
    await tally.send(async () => { await publishRaw(rogue, topic, junk()) })
  })
  return tally
}

/** Messages around and above the record limit (64 KiB) and gossipsub's frame limit (4 MiB). */
export async function oversizedGossip ({ rogue, until, settings }: AttackContext): Promise<Tally> {
  const tally = new Tally()
  const refused: Record<string, number> = {}
  await paced(settings.oversizedRate, until, async i => {
    const size = settings.oversizedBytes[i % settings.oversizedBytes.length]!
    const topic = rogue.topics[Math.floor(i / settings.oversizedBytes.length) % rogue.topics.length]!
    tally.mark()
    try {
      await publishRaw(rogue, topic, randomBytes(size))
    } catch (err) {
      tally.fail()
      const key = `${size}: ${(err as Error).message.slice(0, 80)}`
      refused[key] = (refused[key] ?? 0) + 1
    }
  })
  tally.detail.refusedByRogueStack = refused
  return tally
}

/**
 * Honest peers' own valid records and certificates sent again: on gossip (where the seen-cache
 * should absorb them) and in anti-entropy batches straight to every honest peer (where only the
 * table's cheap checks stand between them and a signature verification).
 */
export async function replayedGossip ({ rogue, until, settings, targets }: AttackContext): Promise<Tally> {
  const tally = new Tally()
  const records = rogue.peer.capability.records()
  const certificates = certificatesOf(rogue)
  tally.detail.replayable = { records: records.length, certificates: certificates.length }
  const messages = [...records.map(data => ({ topic: rogue.ids.capabilityTopic, data })), ...certificates.map(data => ({ topic: rogue.ids.certificateTopic, data }))]
  if (messages.length === 0) return tally
  const batches = batchesOf(records)
  const streams = await Promise.all(targets.map(async t => await openRaw(rogue, t.peerId, rogue.ids.capabilityProtocol, directLimits.maxMessageBytes).catch(() => undefined)))
  await Promise.all([
    paced(settings.gossipRate, until, async i => {
      const m = messages[i % messages.length]!
      await tally.send(async () => { await publishRaw(rogue, m.topic, m.data) })
    }),
    paced(10, until, async i => {
      const batch = batches[i % batches.length]
      if (batch === undefined) return
      await Promise.all(streams.map(async s => { if (s !== undefined) await tally.send(async () => { await s.write(batch) }) }))
    })
  ])
  return tally
}

/**
 * Well-formed, canonical messages whose signatures do not verify: honest hosts' VCVs with a newer
 * version and the old signature, the rogue's own VCVs with a flipped bit, and certificates with
 * one flipped bit in one of their signatures.
 */
export async function badSignatureGossip ({ rogue, until, settings }: AttackContext): Promise<Tally> {
  const tally = new Tally()
  const self = rogue.peer.peerId
  const honest = rogue.peer.capability.records().filter(r => forgeNewerVersion(r, 1) !== undefined && !isFrom(r, self))
  const certificates = certificatesOf(rogue)
  tally.detail.sources = { honestRecords: honest.length, certificates: certificates.length }
  const kinds: Array<(i: number) => { topic: string, data: Uint8Array } | undefined> = [
    i => honest.length === 0 ? undefined : { topic: rogue.ids.capabilityTopic, data: forgeNewerVersion(honest[i % honest.length]!, 1000 + i)! },
    i => {
      const vcv = signCalculator(rogue.signer, 'calc-bad-sig', 1_000_000 + i, calculatorDescription)
      return { topic: rogue.ids.capabilityTopic, data: corruptSignature(vcv.wire, i)! }
    },
    i => {
      const cert = certificates[i % Math.max(1, certificates.length)]
      const data = cert === undefined ? undefined : corruptSignature(cert, i)
      return data === undefined ? undefined : { topic: rogue.ids.certificateTopic, data }
    }
  ]
  const sentPerKind = [0, 0, 0]
  await paced(settings.gossipRate, until, async i => {
    const k = i % kinds.length
    const m = kinds[k]!(Math.floor(i / kinds.length))
    if (m === undefined) return
    sentPerKind[k]!++
    await tally.send(async () => { await publishRaw(rogue, m.topic, m.data) })
  })
  tally.detail.sentPerKind = { forgedHonestVcv: sentPerKind[0], ownVcvFlippedBit: sentPerKind[1], certificateFlippedBit: sentPerKind[2] }
  return tally
}

function certificatesOf (rogue: Rogue): Uint8Array[] {
  return rogue.peer.consensus.certificateIds().map(id => rogue.peer.consensus.certificate(id)).filter((c): c is Uint8Array => c !== undefined)
}

function isFrom (wire: Uint8Array, host: string): boolean {
  return new TextDecoder().decode(wire).includes(host)
}

/** Anti-entropy batches of the given records, each under the batch size target. */
function batchesOf (records: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = []
  let items: Uint8Array[] = []
  let bytes = 0
  for (const r of records) {
    if (items.length > 0 && (bytes + r.byteLength > directLimits.targetBatchBytes || items.length >= directLimits.maxBatchItems)) {
      out.push(encodeDirect({ t: 'batch', items }))
      items = []
      bytes = 0
    }
    items.push(r)
    bytes += r.byteLength
  }
  if (items.length > 0) out.push(encodeDirect({ t: 'batch', items }))
  return out
}
