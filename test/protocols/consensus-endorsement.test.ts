// An agent's own signature inside its host's answer: what it proves and what breaks it.
import { describe, expect, it } from 'vitest'
import { generateKeyPairSync, sign as edSign } from 'node:crypto'
import { decodeAnswer, endorsementMessage, signAnswer, verifyAnswer, type Endorsement } from '../../protocols/consensus/index.ts'
import { makeSigners, verifier } from '../helpers/hosts.ts'

function agentKey (): { raw: Uint8Array, sign: (m: Uint8Array) => Uint8Array } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const raw = new Uint8Array(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'))
  return { raw, sign: m => new Uint8Array(edSign(null, m, privateKey)) }
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('endorsed answers', () => {
  it('verify when the agent key signed exactly the reply the host signed, bound to subtask, input and agent', async () => {
    const [host] = await makeSigners(1)
    const key = agentKey()
    const at = { subtask: 't1/s1', inputHash: 'cd'.repeat(32), agent: `${host!.peerId}/mqtt.edge.stats` }
    const reply = utf8('{"output":{"mean":5.0},"confidence":0.75}')
    const endorsement: Endorsement = { key: key.raw, sig: key.sign(endorsementMessage(at.subtask, at.inputHash, at.agent, reply)), reply }
    const answer = (body: Partial<Parameters<typeof signAnswer>[0]> = {}, e: Endorsement = endorsement): boolean =>
      verifyAnswer(decodeAnswer(signAnswer({ v: 1, ...at, answer: { mean: 5 }, confidence: 0.75, endorsement: e, ...body }, host!).wire), verifier)
    // 5.0 in Python's JSON and 5 in the answer are the same JSON number.
    expect(answer()).toBe(true)
    // The host cannot change the answer or the confidence under the agent's signature…
    expect(answer({ answer: { mean: 6 } })).toBe(false)
    expect(answer({ confidence: 0.9 })).toBe(false)
    // …nor move it to another subtask or input, nor claim another key signed it.
    expect(answer({ subtask: 't1/s2' })).toBe(false)
    expect(answer({ inputHash: 'ef'.repeat(32) })).toBe(false)
    expect(answer({}, { ...endorsement, key: agentKey().raw })).toBe(false)
    expect(answer({}, { ...endorsement, reply: utf8('{"output":{"mean":5},"confidence":0.75}') })).toBe(false)
    // Malformed endorsements do not even decode.
    expect(() => signAnswer({ v: 1, ...at, answer: 1, endorsement: { ...endorsement, key: new Uint8Array(31) } }, host!)).toThrow(/key must be 32 bytes/)
  })

  it('cannot say which key is the agent\'s: without or with a host-made endorsement an answer still verifies, so relying parties compare the key', async () => {
    const [host] = await makeSigners(1)
    const at = { subtask: 't1/s1', inputHash: 'cd'.repeat(32), agent: `${host!.peerId}/mqtt.edge.stats` }
    const reply = utf8('{"output":7}')
    const hostMade = agentKey()
    const forged: Endorsement = { key: hostMade.raw, sig: hostMade.sign(endorsementMessage(at.subtask, at.inputHash, at.agent, reply)), reply }
    const plain = decodeAnswer(signAnswer({ v: 1, ...at, answer: 7 }, host!).wire)
    const swapped = decodeAnswer(signAnswer({ v: 1, ...at, answer: 7, endorsement: forged }, host!).wire)
    expect(verifyAnswer(plain, verifier)).toBe(true)
    expect(verifyAnswer(swapped, verifier)).toBe(true)
    // What tells them apart is the key, which certificates' summaries list per agent.
    expect(swapped.body.endorsement!.key).toEqual(hostMade.raw)
  })
})
