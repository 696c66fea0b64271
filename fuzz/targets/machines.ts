/**
 * The machines' network entry points, documented never to throw: bad input becomes a verdict or a
 * `rejected` event. Each case gets a fresh machine (so a case reproduces alone) and one input.
 */
import { encodeCanonical } from '../../protocols/cbor.ts'
import { CapabilityTable } from '../../protocols/capability/index.ts'
import { decodeCommittee, instanceId } from '../../protocols/consensus/committee.ts'
import { ConsensusPeer } from '../../protocols/consensus/peer.ts'
import type { Fixtures } from '../fixtures.ts'
import { cborCases } from '../mutate.ts'
import { invariant, type Target } from '../target.ts'

const NOW = 1_700_000_010_000

export function capabilityTableTarget (f: Fixtures): Target {
  const seeds = [...f.records, ...f.direct]
  return {
    name: 'capability-table',
    about: 'CapabilityTable.receiveGossip / receiveDirect: verdicts, never exceptions',
    errors: [],
    generate: cborCases(seeds),
    check: input => {
      const table = new CapabilityTable({ signer: f.signers[3]!, verifier: f.verifier, random: () => 0.5 })
      const gossip = table.receiveGossip(input, f.signers[2]!.peerId, NOW)
      invariant(['accept', 'ignore', 'reject'].includes(gossip.verdict), `gossip verdict ${String(gossip.verdict)}`)
      const direct = table.receiveDirect(f.signers[2]!.peerId, input, NOW)
      invariant(['accept', 'ignore', 'reject'].includes(direct.verdict), `direct verdict ${String(direct.verdict)}`)
    }
  }
}

export function consensusPeerTarget (f: Fixtures): Target {
  const statement = f.committees[0]!
  const instance = instanceId(decodeCommittee(statement))
  const seeds = [
    encodeCanonical({ k: 'start', statement, answers: f.answers.slice(0, 2) }),
    ...f.messages.map(m => encodeCanonical({ k: 'msg', i: instance, m })),
    encodeCanonical({ k: 'want', i: instance }),
    encodeCanonical({ k: 'have', ids: [instance] }),
    encodeCanonical({ k: 'certs', certs: f.certificates }),
    ...f.certificates, ...f.equivocations
  ]
  return {
    name: 'consensus-peer',
    about: 'ConsensusPeer.receive / gossip: rejected events, never exceptions',
    errors: [],
    generate: cborCases(seeds),
    check: input => {
      const peer = new ConsensusPeer({ signer: f.signers[1]!, verifier: f.verifier })
      peer.receive(f.signers[0]!.peerId, input, NOW)
      peer.gossip(f.signers[0]!.peerId, input, NOW)
    }
  }
}
