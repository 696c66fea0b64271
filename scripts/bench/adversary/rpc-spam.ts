/**
 * RPC stream spam: every honest peer gets a growing pile of RPC streams (never closed) carrying
 * beacons, executions with day-long deadlines (they queue behind each agent's capacity), consensus
 * notifications full of noise, and now and then a garbage frame; plus empty anti-entropy digests,
 * each of which asks the honest peer to push its whole table back.
 */
import type { LengthPrefixedStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { encodeDirect } from '../../../protocols/capability/index.ts'
import { encodeRpc, rpcLimits, type RpcMessage } from '../../../protocols/rpc/index.ts'
import { openRaw, paced, randomBytes, Tally } from './rogue.ts'
import type { AttackContext } from './attacks.ts'

const AGENTS = ['arithmetic', 'unit-convert', 'text-stats', 'sort', 'json-transform', 'summarize']

export async function rpcSpam ({ rogue, until, settings, targets }: AttackContext): Promise<Tally> {
  const tally = new Tally()
  let opened = 0
  let openFailures = 0
  let closed = 0
  let nextId = 1
  const message = (i: number): Uint8Array => {
    const id = nextId++
    const kind = i % 10
    if (kind === 9) return randomBytes(64) // garbage: the honest side should close this stream
    const m: RpcMessage = kind < 4
      ? { t: 'beacon', id, agents: Array.from({ length: rpcLimits.maxBeaconAgents }, (_, k) => AGENTS[k % AGENTS.length]!) }
      : kind < 7
        ? { t: 'execute', id, agent: 'arithmetic', input: { expression: `${i} * ${i} + 1` }, deadlineMs: rpcLimits.maxDeadlineMs }
        : { t: 'notify', id: 0, data: randomBytes(256) }
    return encodeRpc(m)
  }
  await Promise.all(targets.map(async target => {
    const pool: Array<LengthPrefixedStream<Stream> | undefined> = []
    const digest = await openRaw(rogue, target.peerId, rogue.ids.capabilityProtocol).catch(() => undefined)
    const emptyDigest = encodeDirect({ t: 'digest', entries: [] })
    await paced(settings.rpcRate, until, async i => {
      // Open one more stream every few messages, up to the pile's size.
      if (pool.length < settings.rpcStreams && i % 2 === 0) {
        const slot = pool.length
        pool.push(undefined)
        try { pool[slot] = await openRaw(rogue, target.peerId, rogue.ids.rpcProtocol, rpcLimits.maxMessageBytes); opened++ } catch { openFailures++ }
      }
      if (i % 20 === 0 && digest !== undefined) await tally.send(async () => { await digest.write(emptyDigest) })
      const live = pool.filter((s): s is LengthPrefixedStream<Stream> => s !== undefined)
      const stream = live[i % Math.max(1, live.length)]
      if (stream === undefined) { tally.mark(); tally.fail(); return }
      tally.mark()
      try {
        await stream.write(message(i))
      } catch {
        // Closed by the honest side (garbage, or its stream limit): forget it, open another later.
        tally.fail()
        closed++
        const at = pool.indexOf(stream)
        if (at >= 0) pool.splice(at, 1)
      }
    })
  }))
  tally.detail.streamsOpened = opened
  tally.detail.streamOpenFailures = openFailures
  tally.detail.streamsClosedByHonest = closed
  return tally
}
