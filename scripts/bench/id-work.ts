/**
 * What proof of work on peer ids costs (network file `idWorkBits`): wall time per identity made
 * by `mintKey` on one core (an attacker with hand-written curve arithmetic may draw faster) at several difficulties, key pairs tried per second, and the cost of
 * the check every record and connection pays. One line per difficulty.
 */
import { mintKey } from '../../node/storage/identity.ts'
import { idWorkBits, peerIdFromEd25519 } from '../../protocols/identity.ts'
import type { BenchOptions } from '../bench.ts'

export async function * idWorkBench ({ quick }: BenchOptions): AsyncIterable<Record<string, unknown>> {
  const plan: Array<[bits: number, identities: number]> = quick ? [[8, 40], [12, 10]] : [[8, 200], [12, 40], [16, 12]]
  for (const [bits, n] of plan) {
    const times: number[] = []
    for (let i = 0; i < n; i++) {
      const start = performance.now()
      const key = await mintKey(bits)
      times.push(performance.now() - start)
      const id = peerIdFromEd25519(key.publicKey.raw)
      if (idWorkBits(id) < bits) throw new Error('minted key without the work')
    }
    const ids = Array.from({ length: 2000 }, (_, i) => peerIdFromEd25519(Uint8Array.from({ length: 32 }, (_, j) => (i * 31 + j * 7) & 255)))
    const checkStart = performance.now()
    for (const id of ids) idWorkBits(id)
    const checkUs = (performance.now() - checkStart) * 1000 / ids.length
    times.sort((a, b) => a - b)
    const mean = times.reduce((a, b) => a + b, 0) / n
    yield {
      bench: 'id-work',
      bits,
      identities: n,
      meanMsPerIdentity: Math.round(mean),
      medianMsPerIdentity: Math.round(times[Math.floor(n / 2)]!),
      expectedKeyPairs: 2 ** bits,
      // From the expected tries: the draw count per identity is geometric, so a few runs vary a lot.
      keyPairsPerSecond: Math.round(2 ** bits / (mean / 1000)),
      cpuMinutesPer1000Identities: +(mean * 1000 / 60_000).toFixed(1),
      checkUsPerId: +checkUs.toFixed(2)
    }
  }
}
