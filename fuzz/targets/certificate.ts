/** Certificates: the CBOR form (gossip, API) and the JSON form `agentmesh verify` reads. */
import { bytesEqual } from '../../protocols/cbor.ts'
import { canonicalJson } from '../../protocols/hash.ts'
import { certificateFromJson, certificateToJson, decodeCertificate, encodeCertificate, verifyCertificate, type Certificate } from '../../protocols/consensus/certificate.ts'
import { ConsensusError } from '../../protocols/consensus/signed.ts'
import { Nested, Raw } from '../cbor-writer.ts'
import type { Fixtures } from '../fixtures.ts'
import { cborCases, mutateBytes, mutateTree } from '../mutate.ts'
import { invariant, isOriginal, type Target } from '../target.ts'

const utf8 = new TextEncoder()
const text = new TextDecoder()

/** A certificate that checks out may differ from the original only in ways no signature covers. */
function checkVerified (c: Certificate, f: Fixtures): void {
  const check = verifyCertificate(c, f.verifier)
  if (!check.ok) return
  invariant(isOriginal(c.statement, f.committees), 'a certificate with a changed statement verifies')
  invariant(c.evidence.every(e => isOriginal(e, f.answers)), 'a certificate with changed evidence verifies')
  invariant(c.precommits.every(p => isOriginal(p, f.messages) || f.certificate.precommits.some(o => bytesEqual(o, p))), 'a certificate with a changed precommit verifies')
  invariant(canonicalJson(c.outcome) === canonicalJson(f.certificate.outcome), 'a certificate with a changed outcome verifies')
}

export function certificateTarget (f: Fixtures): Target {
  return {
    name: 'certificate',
    about: 'decodeCertificate + verifyCertificate (CBOR)',
    errors: [ConsensusError],
    generate: cborCases(f.certificates),
    check: input => {
      const c = decodeCertificate(input)
      invariant(bytesEqual(encodeCertificate(c), input), 'accepted certificate does not re-encode to its bytes')
      checkVerified(c, f)
    }
  }
}

export function certificateJsonTarget (f: Fixtures): Target {
  const seed = JSON.stringify(certificateToJson(f.certificate))
  const tree = JSON.parse(seed) as unknown
  const cbor = cborCases(f.certificates)
  return {
    name: 'certificate-json',
    about: 'certificateFromJson + verifyCertificate (agentmesh verify FILE)',
    errors: [ConsensusError],
    generate: rng => {
      const r = rng.float()
      if (r < 0.6) return utf8.encode(JSON.stringify(mutateTree(tree, rng), jsonSafe))
      if (r < 0.95) return mutateBytes(utf8.encode(seed), rng)
      return cbor(rng)
    },
    check: input => {
      let value: unknown
      try {
        value = JSON.parse(text.decode(input))
      } catch {
        return // not JSON: the command says so before the decoder runs
      }
      checkVerified(certificateFromJson(value), f)
    }
  }
}

/** Mutated trees hold bytes and raw CBOR; JSON gets a stand-in for each. */
function jsonSafe (_key: string, v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v]
  if (v instanceof Raw) return v.label
  if (v instanceof Nested) return v.value
  return v
}
