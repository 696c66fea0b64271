/**
 * The rogue peer: started with the project's own startPeer (same host builder, gossip settings
 * and services as an honest peer, so honest peers take it for one of theirs), plus raw access
 * to what an attacker controls: publishing any bytes on any topic, opening any protocol stream,
 * and signing with its own key.
 */
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { defaultAgentSpecs } from '../../../node/agents/registry.ts'
import { ed25519Signer } from '../../../node/network/crypto.ts'
import { startPeer, type Peer } from '../../../node/peer.ts'
import { loadNetwork } from '../../../node/network/network-file.ts'
import { loadOrCreateIdentity } from '../../../node/storage/identity.ts'
import { networkIds, type NetworkIds } from '../../../protocols/network/index.ts'
import type { Signer } from '../../../protocols/identity.ts'
import { decodeCanonical } from '../../../protocols/cbor.ts'
import { decodeCommittee, instanceId } from '../../../protocols/consensus/index.ts'
import type { AttackReport } from './protocol.ts'

export interface Rogue {
  peer: Peer
  ids: NetworkIds
  key: PrivateKey
  signer: Signer
  /** Every gossip topic of the network. */
  topics: string[]
  /** Committees the rogue was asked to join (instance id → member peer ids), newest last. */
  committees: Map<string, string[]>
}

export async function startRogue (dataDir: string, networkFile: string): Promise<Rogue> {
  const network = loadNetwork(networkFile, dataDir)
  const peer = await startPeer({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], agents: defaultAgentSpecs(), network: { network, public: false, announce: [] } })
  // The identity file startPeer made (with the network's proof of work): the rogue signs with it.
  const { key } = await loadOrCreateIdentity(dataDir, { workBits: network.idWorkBits })
  const ids = networkIds(network.name)
  const rogue: Rogue = { peer, ids, key, signer: ed25519Signer(key), topics: [ids.capabilityTopic, ids.certificateTopic], committees: new Map() }
  watchCommittees(rogue)
  return rogue
}

/** Listens in on consensus traffic (beside the rogue's own machine) for committee statements. */
function watchCommittees (rogue: Rogue): void {
  rogue.peer.rpc.addEventListener('notify', e => {
    try {
      const m = decodeCanonical(e.detail.data) as { k?: unknown, statement?: unknown }
      if (m.k === 'start' && m.statement instanceof Uint8Array) {
        const statement = decodeCommittee(m.statement)
        rogue.committees.set(instanceId(statement), statement.body.members.map(x => x.id))
        if (rogue.committees.size > 500) rogue.committees.delete(rogue.committees.keys().next().value!)
      }
    } catch {}
  })
}

/** Counts what an attack sent; the first send stamps the time rogueBannedMs is measured from. */
export class Tally {
  sent = 0
  sendErrors = 0
  firstAttackAt: number | null = null
  readonly detail: Record<string, unknown> = {}

  mark (): void { this.firstAttackAt ??= Date.now(); this.sent++ }
  fail (): void { this.sendErrors++ }
  report (): AttackReport { return { sent: this.sent, sendErrors: this.sendErrors, firstAttackAt: this.firstAttackAt, detail: this.detail } }

  async send (fn: () => Promise<unknown>): Promise<void> {
    this.mark()
    try { await fn() } catch { this.fail() }
  }
}

/** Publishes raw bytes on a topic, bypassing every check the services would make. */
export async function publishRaw (rogue: Rogue, topic: string, data: Uint8Array): Promise<void> {
  await rogue.peer.libp2p.services.pubsub.publish(topic, data)
}

/** A raw length-prefixed protocol stream to a peer; whatever comes back is read and dropped. */
export async function openRaw (rogue: Rogue, peerId: string, protocol: string, maxDataLength = 4 * 1024 * 1024): Promise<LengthPrefixedStream<Stream>> {
  const stream = await rogue.peer.libp2p.dialProtocol(peerIdFromString(peerId), protocol, { signal: AbortSignal.timeout(5000) })
  const lp = lpStream(stream, { maxDataLength })
  void (async () => { try { for (;;) await lp.read() } catch {} })()
  return lp
}

/**
 * Calls `send(i)` about `perSecond` times a second until `until`, in small batches so the rate
 * holds without one long synchronous burst.
 */
export async function paced (perSecond: number, until: number, send: (i: number) => Promise<void>): Promise<void> {
  const tickMs = 50
  let i = 0
  const started = Date.now()
  while (Date.now() < until) {
    const due = Math.floor(((Date.now() - started + tickMs) / 1000) * perSecond)
    const batch: Array<Promise<void>> = []
    while (i < due) batch.push(send(i++))
    await Promise.all(batch)
    await sleep(Math.max(0, tickMs - ((Date.now() - started) % tickMs)))
  }
}

export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

export function randomBytes (n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)))
  return out
}
