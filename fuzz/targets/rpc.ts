/** RPC frames between peers (beacons, executions, results, notifications), and beacon replies. */
import { bytesEqual, encodeCanonical } from '../../protocols/cbor.ts'
import { BeaconRound } from '../../protocols/beacon/round.ts'
import { decodeRpc, rpcLimits, RpcError } from '../../protocols/rpc/index.ts'
import type { Fixtures } from '../fixtures.ts'
import { cborCases } from '../mutate.ts'
import { invariant, type Target } from '../target.ts'

export function rpcTarget (f: Fixtures): Target {
  return {
    name: 'rpc',
    about: 'decodeRpc (+ a beacon round fed the decoded reply)',
    errors: [RpcError],
    generate: cborCases(f.rpc),
    check: input => {
      const m = decodeRpc(input)
      invariant(input.byteLength <= rpcLimits.maxMessageBytes, 'accepted a message over the size limit')
      invariant(bytesEqual(encodeCanonical(m), input), 'accepted message does not re-encode to its bytes')
      if (m.t === 'beacon-reply') {
        const round = new BeaconRound(m.id, m.states.map(s => `host/${s.agent}`), 1000)
        round.start(0)
        round.reply('host', m, 1)
      }
    }
  }
}
