/** Consensus wire objects: answers, committee statements, proposals and votes, equivocation proofs. */
import { bytesEqual, encodeCanonical } from '../../protocols/cbor.ts'
import { decodeAnswer, verifyAnswer } from '../../protocols/consensus/answer.ts'
import { decodeCommittee, verifyCommittee } from '../../protocols/consensus/committee.ts'
import { checkEquivocation } from '../../protocols/consensus/evidence.ts'
import { decodeMessage, proposalValue, verifyMessage, type SignedProposal } from '../../protocols/consensus/messages.ts'
import { ConsensusError, type Signed } from '../../protocols/consensus/signed.ts'
import type { Fixtures } from '../fixtures.ts'
import { cborCases } from '../mutate.ts'
import { invariant, isOriginal, type Target } from '../target.ts'

function canonical (s: Signed<unknown>, input: Uint8Array): void {
  invariant(bytesEqual(encodeCanonical({ t: s.kind, body: s.bodyBytes, sig: s.sig }), input), 'accepted message does not re-encode to its bytes')
  invariant(bytesEqual(encodeCanonical(s.body), s.bodyBytes), 'accepted body does not re-encode to its bytes')
}

export function answerTarget (f: Fixtures): Target {
  return {
    name: 'answer',
    about: 'decodeAnswer + verifyAnswer: signed executor answers',
    errors: [ConsensusError],
    generate: cborCases(f.answers),
    check: input => {
      const a = decodeAnswer(input)
      canonical(a, input)
      if (verifyAnswer(a, f.verifier)) invariant(isOriginal(input, f.answers), 'a changed answer verifies')
    }
  }
}

export function committeeTarget (f: Fixtures): Target {
  return {
    name: 'committee',
    about: 'decodeCommittee + verifyCommittee: signed committee statements',
    errors: [ConsensusError],
    generate: cborCases(f.committees),
    check: input => {
      const c = decodeCommittee(input)
      canonical(c, input)
      if (verifyCommittee(c, f.verifier)) invariant(isOriginal(input, f.committees), 'a changed statement verifies')
    }
  }
}

export function messageTarget (f: Fixtures): Target {
  return {
    name: 'message',
    about: 'decodeMessage + verifyMessage + proposalValue: proposals and votes',
    errors: [ConsensusError],
    generate: cborCases(f.messages),
    check: input => {
      const m = decodeMessage(input)
      canonical(m, input)
      if (verifyMessage(m, f.verifier)) invariant(isOriginal(input, f.messages), 'a changed message verifies')
      if (m.kind === 'proposal') proposalValue(m as SignedProposal)
    }
  }
}

export function equivocationTarget (f: Fixtures): Target {
  return {
    name: 'equivocation',
    about: 'checkEquivocation: proofs that a member signed two conflicting messages',
    errors: [ConsensusError],
    generate: cborCases(f.equivocations),
    check: input => {
      const e = checkEquivocation(input, f.verifier)
      invariant(f.signers.some(s => s.peerId === e.host), 'a proof blames a host that signed nothing')
    }
  }
}
