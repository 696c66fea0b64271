/** Sybil advertisements and equivocation: validly signed records that lie. */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { mintKey } from '../../../node/storage/identity.ts'
import { ed25519Signer } from '../../../node/network/crypto.ts'
import type { Signer } from '../../../protocols/identity.ts'
import { toString } from 'uint8arrays'
import { encodeCanonical } from '../../../protocols/cbor.ts'
import { signVote } from '../../../protocols/consensus/messages.ts'
import { calculatorDescription, signCalculator } from './records.ts'
import { paced, publishRaw, Tally } from './rogue.ts'
import type { AttackContext } from './attacks.ts'

/** `settings.sybilAgents` near-duplicate calculators signed with the rogue's own key. */
export async function sybil10k (ctx: AttackContext): Promise<Tally> {
  return await advertise(ctx, () => ctx.rogue.signer)
}

/**
 * The same number of calculators spread over `settings.sybilKeys` fresh keys (hosts that do not
 * exist), `sybilAgents / sybilKeys` per key. When the network asks for proof of work on peer ids
 * the keys are minted during the attack, as fast as this process can, and each key's agents go
 * out as soon as it exists: the detail says how many keys the attack window bought.
 */
export async function sybilKeys (ctx: AttackContext): Promise<Tally> {
  const { settings, until } = ctx
  const perKey = Math.ceil(settings.sybilAgents / settings.sybilKeys)
  const signers: Signer[] = []
  const minting = (async () => {
    const started = Date.now()
    while (signers.length < settings.sybilKeys && Date.now() < until) {
      const key = settings.idWorkBits > 0 ? await mintKey(settings.idWorkBits) : await generateKeyPair('Ed25519')
      signers.push(ed25519Signer(key))
    }
    return Date.now() - started
  })()
  const tally = await advertise(ctx, i => signers[Math.floor(i / perKey)])
  const mintingMs = await minting
  tally.detail.keysMinted = signers.length
  tally.detail.mintMsPerKey = signers.length === 0 ? null : Math.round(mintingMs / signers.length)
  return tally
}

/** Agent i is signed by `signerOf(i)`; an agent whose signer does not exist yet waits for it. */
async function advertise ({ rogue, until, settings }: AttackContext, signerOf: (i: number) => Signer | undefined): Promise<Tally> {
  const tally = new Tally()
  const hosts = new Set<string>()
  let done = 0
  await paced(settings.sybilRate, until, async () => {
    if (done >= settings.sybilAgents) return
    const i = done
    const signer = signerOf(i)
    if (signer === undefined) return
    done = i + 1
    hosts.add(signer.peerId)
    const vcv = signCalculator(signer, `arithmetic-${i}`, 1, `${calculatorDescription} (${i % 97})`)
    await tally.send(async () => { await publishRaw(rogue, rogue.ids.capabilityTopic, vcv.wire) })
  })
  tally.detail.advertised = done
  tally.detail.keys = hosts.size
  return tally
}

/**
 * Every second, two different VCVs with one version for each of the rogue's agents (and for one
 * fake agent), both published; and in every committee the rogue is asked to join, two conflicting
 * prevotes and two conflicting precommits (beside the honest ones its own machine casts).
 */
export async function equivocation (ctx: AttackContext): Promise<Tally> {
  const tally = new Tally()
  await Promise.all([vcvEquivocation(ctx, tally), voteEquivocation(ctx, tally)])
  return tally
}

async function voteEquivocation ({ rogue, until }: AttackContext, tally: Tally): Promise<void> {
  const done = new Set(rogue.committees.keys()) // instances already over before the attack
  let count = 0
  const random = (): string => toString(crypto.getRandomValues(new Uint8Array(32)), 'base16')
  await paced(4, until, async () => {
    for (const [instance, members] of rogue.committees) {
      if (done.has(instance)) continue
      done.add(instance)
      count++
      for (const type of ['prevote', 'precommit'] as const) {
        for (const value of [random(), random()]) {
          const vote = signVote({ instance, round: 0, type, value }, rogue.signer)
          const data = encodeCanonical({ k: 'msg', i: instance, m: vote.wire })
          for (const member of members) {
            if (member === rogue.peer.peerId) continue
            tally.mark()
            rogue.peer.rpc.notify(member, data)
          }
        }
      }
    }
  })
  tally.detail.committeesEquivocatedIn = count
}

async function vcvEquivocation ({ rogue, until }: AttackContext, tally: Tally): Promise<void> {
  const names = [...rogue.peer.agents.keys(), 'calc-twofaced']
  const base = Math.max(0, ...Object.values(rogue.peer.capability.versions())) + 1000
  let rounds = 0
  await paced(1, until, async round => {
    rounds++
    await Promise.all(names.map(async name => {
      for (const side of ['a', 'b']) {
        const vcv = signCalculator(rogue.signer, name, base + round, `${calculatorDescription} [${side}]`)
        await tally.send(async () => { await publishRaw(rogue, rogue.ids.capabilityTopic, vcv.wire) })
      }
    }))
  })
  tally.detail.equivocatedVersions = rounds * names.length
}
