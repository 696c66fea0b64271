/**
 * The decoder fuzzer (fuzz/) at test size: a fixed seed and 200 cases per target, no timing.
 * `npm run fuzz` runs 100k cases and also counts slow ones. Below it, regressions for what it found.
 */
import { describe, it, expect, beforeAll } from 'vitest'
import { decodeCanonical } from '../../protocols/cbor.ts'
import { certificateFromJson, certificateToJson, decodeCertificate, verifyCertificate } from '../../protocols/consensus/certificate.ts'
import { ConsensusError } from '../../protocols/consensus/signed.ts'
import { ConfigError, parseAgentsYaml } from '../../node/agents/config.ts'
import { allTargets } from '../../fuzz/targets/index.ts'
import { fixtures, type Fixtures } from '../../fuzz/fixtures.ts'
import { Raw, writeCbor } from '../../fuzz/cbor-writer.ts'
import { toTree } from '../../fuzz/mutate.ts'
import { runTarget } from '../../fuzz/run.ts'
import type { Target } from '../../fuzz/target.ts'

const SEED = 20261206
const CASES = 200

let targets: Target[]
let f: Fixtures
beforeAll(async () => {
  targets = await allTargets()
  f = await fixtures()
})

describe('decoder fuzzer', () => {
  it('covers every decoder of outside input', () => {
    expect(targets.map(t => t.name)).toEqual(['cbor', 'record', 'direct', 'answer', 'committee', 'message', 'equivocation',
      'certificate', 'certificate-json', 'rpc', 'task', 'network-file', 'agents-file',
      'capability-table', 'consensus-peer', 'mqtt-advert', 'mqtt-bridge'])
  })

  it('the canonical writer writes the project encoder\'s bytes, so unmutated cases start from valid input', () => {
    for (const seed of [...f.records, ...f.direct, ...f.messages, ...f.certificates, ...f.equivocations, ...f.rpc]) {
      expect(Buffer.from(writeCbor(toTree(seed))).toString('hex')).toBe(Buffer.from(seed).toString('hex'))
    }
  })

  it(`${CASES} cases per target: only documented errors, no broken invariant`, () => {
    for (const target of targets) {
      const r = runTarget(target, { seed: SEED, cases: CASES })
      expect(r.findings.map(x => `${x.kind}: ${x.message} (npm run fuzz -- --target ${x.target} --seed ${x.seed} --case ${x.index})`), target.name).toEqual([])
      expect(r.accepted, `${target.name}: some cases are accepted`).toBeGreaterThan(0)
      const throws = target.errors.length > 0 || target.accepts !== undefined // the machines never throw
      if (throws) expect(r.reasons.size, `${target.name}: refusals have several reasons`).toBeGreaterThan(3)
    }
  })

  it('is deterministic: one seed, one report', () => {
    const target = targets.find(t => t.name === 'message')!
    const a = runTarget(target, { seed: 7, cases: 100 })
    const b = runTarget(target, { seed: 7, cases: 100 })
    expect([...b.reasons]).toEqual([...a.reasons])
    expect(b.accepted).toBe(a.accepted)
  })
})

describe('fuzzer findings, fixed', () => {
  it('decodeCanonical refuses deep nesting with a decode error, not a stack overflow', () => {
    const deep = new Uint8Array(200_001).fill(0x81)
    deep[200_000] = 0
    expect(() => decodeCanonical(deep)).toThrow(/^CBOR decode error: nested too deeply$/)
    try { decodeCanonical(deep) } catch (err) { expect((err as Error).constructor).toBe(Error) }
  })

  it('decodeCanonical refuses nesting past 256 levels before re-encoding it (cborg re-encodes in depth² time)', () => {
    const nested = (depth: number): Uint8Array => Uint8Array.from([...new Array<number>(depth).fill(0x81), 0])
    expect(decodeCanonical(nested(256))).toBeDefined()
    expect(() => decodeCanonical(nested(257))).toThrow(/^CBOR decode error: nested more than 256 deep$/)
    expect(() => decodeCanonical(nested(5000))).toThrow(/nested more than 256 deep/)
  })

  it('an agents file whose list contains itself (a YAML alias) is a ConfigError, not a TypeError from JSON.stringify', () => {
    expect(() => parseAgentsYaml('agents: &a [*a]\n', 'a.yaml')).toThrow(ConfigError)
    expect(() => parseAgentsYaml('agents:\n  - kind: sort\n    description: &d [*d]\n', 'a.yaml')).toThrow(/"description" must be a non-empty string.*contains itself/)
  })

  it('decodeCertificate checks the outcome\'s shape: a deep one made verifyCertificate overflow the stack', () => {
    const c = f.certificate
    const bomb = new Raw(Uint8Array.from([...new Array<number>(8000).fill(0x81), 0]), 'deep')
    const deep = writeCbor({ t: 'certificate', statement: c.statement, round: c.round, outcome: { kind: 'answer', answer: bomb }, evidence: c.evidence, precommits: c.precommits })
    expect(() => decodeCertificate(deep)).toThrow(ConsensusError)
    const bytes = writeCbor({ t: 'certificate', statement: c.statement, round: c.round, outcome: new Uint8Array(3), evidence: c.evidence, precommits: c.precommits })
    expect(() => decodeCertificate(bytes)).toThrow(/outcome must be/)
    expect(() => certificateFromJson({ ...certificateToJson(c), outcome: 'x' })).toThrow(ConsensusError)
    expect(verifyCertificate(decodeCertificate(writeCbor({ t: 'certificate', ...c })), f.verifier).ok).toBe(true)
  })
})
