/** Consensus wire objects: answers, committee statements, proposals and votes, equivocation proofs. */
import { bytesEqual, encodeCanonical } from '../../protocols/cbor.ts'
import { decodeAnswer, verifyAnswer } from '../../protocols/consensus/answer.ts'
import { decodeCommittee, verifyCommittee } from '../../protocols/consensus/committee.ts'
import { checkEquivocation } from '../../protocols/consensus/evidence.ts'
import { decodeMessage, proposalValue, verifyMessage, type SignedProposal } from '../../protocols/consensus/messages.ts'
import { ConsensusError, type Signed } from '../../protocols/consensus/signed.ts'
import type { Fixtures } from '../fixtures.ts'
import { cborCase, toTree } from '../mutate.ts'
import { invariant, isOriginal, type Target } from '../target.ts'

function canonical (s: Signed<unknown>, input: Uint8Array): void {
  invariant(bytesEqual(encodeCanonical({ t: s.kind, body: s.bodyBytes, sig: s.sig }), input), 'accepted message does not re-encode to its bytes')
  invariant(bytesEqual(encodeCanonical(s.body), s.bodyBytes), 'accepted body does not re-encode to its bytes')
}

export function answerTarget (f: Fixtures): Target {
  const trees = f.answers.map(toTree)
  return {
    name: 'answer',
    about: 'decodeAnswer + verifyAnswer: signed executor answers',
    errors: [ConsensusError],
    generate: rng => cborCase(f.answers, trees, rng),
    check: input => {
      const a = decodeAnswer(input)
      canonical(a, input)
      if (verifyAnswer(a, f.verifier)) invariant(isOriginal(input, f.answers), 'a changed answer verifies')
    }
  }
}

export function committeeTarget (f: Fixtures): Target {
  const trees = f.committees.map(toTree)
  return {
    name: 'committee',
    about: 'decodeCommittee + verifyCommittee: signed committee statements',
    errors: [ConsensusError],
    generate: rng => cborCase(f.committees, trees, rng),
    check: input => {
      const c = decodeCommittee(input)
      canonical(c, input)
      if (verifyCommittee(c, f.verifier)) invariant(isOriginal(input, f.committees), 'a changed statement verifies')
    }
  }
}

export function messageTarget (f: Fixtures): Target {
  const trees = f.messages.map(toTree)
  return {
    name: 'message',
    about: 'decodeMessage + verifyMessage + proposalValue: proposals and votes',
    errors: [ConsensusError],
    generate: rng => cborCase(f.messages, trees, rng),
    check: input => {
      const m = decodeMessage(input)
      canonical(m, input)
      if (verifyMessage(m, f.verifier)) invariant(isOriginal(input, f.messages), 'a changed message verifies')
      if (m.kind === 'proposal') proposalValue(m as SignedProposal)
    }
  }
}

export function equivocationTarget (f: Fixtures): Target {
  const trees = f.equivocations.map(toTree)
  return {
    name: 'equivocation',
    about: 'checkEquivocation: proofs that a member signed two conflicting messages',
    errors: [ConsensusError],
    generate: rng => cborCase(f.equivocations, trees, rng),
    check: input => {
      const e = checkEquivocation(input, f.verifier)
      invariant(f.signers.some(s => s.peerId === e.host), 'a proof blames a host that signed nothing')
    }
  }
}
