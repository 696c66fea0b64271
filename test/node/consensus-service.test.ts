// The consensus service as a libp2p service: it declares what it depends on, and our services'
// errors reach the peer's warning sink through the component logger instead of vanishing in DEBUG.
import { describe, it, expect } from 'vitest'
import { createLibp2p } from 'libp2p'
import { capabilityService } from '../../node/services/capability-service.ts'
import { consensusService } from '../../node/services/consensus-service.ts'
import { peerLogger } from '../../node/services/logger.ts'
import { fastSigners } from '../helpers/committee.ts'

describe('the consensus service as a libp2p service', () => {
  it('a node without the RPC service and gossipsub it depends on refuses to be made, naming the missing capability', async () => {
    const { signers, verifier } = fastSigners(1, 9)
    await expect(createLibp2p({ start: false, services: { consensus: consensusService({ signer: signers[0]!, verifier }) as never } }))
      .rejects.toThrow(/Service "agentmesh\/consensus" required capability "@libp2p\/pubsub"/)
  })

  it('so does a node with the capability service but no gossipsub', async () => {
    await expect(createLibp2p({ start: false, services: { capability: capabilityService({ verifier: fastSigners(1, 9).verifier }) as never } }))
      .rejects.toThrow(/Service "agentmesh\/capability" required capability "@libp2p\/pubsub"/)
  })

  it('an error of our own services is said (libp2p\'s formats as text); plain lines and libp2p\'s own errors stay in DEBUG', () => {
    const said: string[] = []
    const logger = peerLogger((component, message) => { said.push(`${component}: ${message}`) })
    const log = logger.forComponent('agentmesh:consensus')
    log('a routine line %s', 'x')
    log.error('could not compact %s: %e', '/data/certificates.log', new Error('ENOSPC: no space left on device'))
    log.newScope('sync').error('page %d failed', 3)
    logger.forComponent('libp2p:dialer').error('dial failed: %e', new Error('ECONNREFUSED'))
    expect(said).toEqual([
      'agentmesh:consensus: could not compact /data/certificates.log: ENOSPC: no space left on device',
      'agentmesh:consensus:sync: page 3 failed'
    ])
  })
})
