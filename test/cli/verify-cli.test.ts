// `agentmesh verify` end to end: real Ed25519 certificates written to files, checked by the
// command in a child process, like a user would.
import { describe, it, beforeAll, afterAll } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ed25519Verifier } from '../../node/network/crypto.ts'
import { signCommittee, votingPowers } from '../../protocols/consensus/committee.ts'
import { certificateToJson, encodeCertificate, verifyCertificate, type Certificate } from '../../protocols/consensus/certificate.ts'
import type { Json } from '../../protocols/consensus/types.ts'
import { makeSigners } from '../helpers/hosts.ts'
import { INPUT_HASH, runCommittee, type CommitteeSetup } from '../helpers/committee.ts'

const BIN = fileURLToPath(new URL('../../bin/agentmesh.js', import.meta.url))
const verifier = ed25519Verifier()

interface Result { code: number | null, stdout: string, stderr: string }

/** Runs `agentmesh verify ARGS` to completion. */
function verify (...args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'verify', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    child.once('error', reject)
    child.once('close', code => resolve({ code, stdout, stderr }))
  })
}

const show = (r: Result): string => `exit ${String(r.code)}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`

/** A 4-member committee with real Ed25519 keys; member i's executor answers `answers[i]`. */
async function commit (subtask: string, answers: Json[]): Promise<{ setup: CommitteeSetup, certificate: Certificate }> {
  const signers = await makeSigners(answers.length)
  const agents = signers.map(s => `${s.peerId}/exec`)
  const statement = signCommittee({
    v: 1, subtask, inputHash: INPUT_HASH, requester: signers[0]!.peerId,
    members: votingPowers(new Map(signers.map(s => [s.peerId, 0.8]))),
    executors: agents.map(agent => ({ agent, reputation: 0.6, accuracy: 0.7 })).sort((a, b) => (a.agent < b.agent ? -1 : 1)),
    rule: { kind: 'json' }, aggregation: { confidenceCap: 0.9, shrink: 0.5, margin: 0.2, coverage: 2 / 3, minStanding: 0.1 }
  }, signers[0]!)
  const setup = { statement, signers, verifier, agents }
  const result = runCommittee(setup, {
    seed: 1, dropBeforeGst: 0, gstMs: 0, deltaMs: 20, untilMs: 60_000, behaviours: answers.map(() => 'honest' as const), answers
  })
  const certificate = result.decided[0]
  if (certificate === undefined) throw new Error('the committee did not commit')
  return { setup, certificate }
}

let dir: string
let answer: { setup: CommitteeSetup, certificate: Certificate }
let escalation: { setup: CommitteeSetup, certificate: Certificate }
const file = (name: string, content: string | Uint8Array): string => {
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}
const json = (c: Certificate): string => JSON.stringify(certificateToJson(c), null, 2)

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agentmesh-verify-'))
  answer = await commit('task-verify/sum', [{ sum: 3 }, { sum: 3 }, { sum: 3 }, { sum: 4 }])
  escalation = await commit('task-verify/split', [1, 1, 2, 2])
  // The fixtures themselves are what the test means them to be.
  if (!verifyCertificate(answer.certificate, verifier).ok || !verifyCertificate(escalation.certificate, verifier).ok) throw new Error('fixture certificates do not verify')
})

afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

describe.concurrent('agentmesh verify', () => {
  it('a valid certificate: exit 0, names the committed answer, the requester, the power and who agreed', async ({ expect }) => {
    const r = await verify(file('answer.json', json(answer.certificate)))
    expect(r.code, show(r)).toBe(0)
    const { setup } = answer
    expect(r.stdout).toMatch(/^certificate is valid/)
    expect(r.stdout).toContain('subtask      task-verify/sum')
    expect(r.stdout).toContain('committed answer {"sum":3}')
    expect(r.stdout).toContain(`requester    ${setup.signers[0]!.peerId}`)
    expect(r.stdout).toMatch(/power +\d+ of \d+ voting power committed \(\d+\.\d%\), more than 2\/3/)
    expect(r.stdout).toMatch(/agreed +3\n/)
    expect(r.stdout).toMatch(/disagreed +1\n/)
    for (const agent of setup.agents) expect(r.stdout).toContain(agent)
    expect(r.stdout).toMatch(new RegExp(`signatures +${1 + 4 + answer.certificate.precommits.length} checked`))
    expect(r.stderr).toBe('')
  })

  it('an escalation certificate: exit 0 and says no answer was committed', async ({ expect }) => {
    const r = await verify(file('escalate.json', json(escalation.certificate)))
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toMatch(/outcome +escalated/)
    expect(r.stdout).toMatch(/disagreed +4\n/)
  })

  it('reads the raw CBOR form too', async ({ expect }) => {
    const r = await verify(file('answer.cbor', encodeCertificate(answer.certificate)))
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toContain('committed answer {"sum":3}')
  })

  it('--json prints { ok, summary }', async ({ expect }) => {
    const r = await verify(file('answer-json.json', json(answer.certificate)), '--json')
    expect(r.code, show(r)).toBe(0)
    const out = JSON.parse(r.stdout) as { ok: boolean, summary: Record<string, unknown> }
    const expected = verifyCertificate(answer.certificate, verifier)
    expect(expected.ok).toBe(true)
    if (!expected.ok) return
    expect(out).toEqual({ ok: true, summary: expected.summary })
    expect(out.summary).toMatchObject({ subtask: 'task-verify/sum', outcome: { kind: 'answer', answer: { sum: 3 } } })
  })

  it('a changed outcome: exit 1, "NOT valid" and one line per problem', async ({ expect }) => {
    const tampered = { ...answer.certificate, outcome: { kind: 'answer' as const, answer: { sum: 4 } } }
    const r = await verify(file('changed.json', json(tampered)))
    expect(r.code, show(r)).toBe(1)
    const lines = r.stdout.trim().split('\n')
    expect(lines[0]).toBe('certificate is NOT valid:')
    expect(r.stdout).toMatch(/^ {2}value: the evidence aggregates to .*not the proposed/m)
    for (let i = 0; i < tampered.precommits.length; i++) expect(r.stdout).toMatch(new RegExp(`^ {2}precommit ${i}: is for value .*not the committed value$`, 'm'))
    expect(r.stdout).toMatch(/^ {2}precommits carry 0 of \d+ voting power; more than 2\/3/m)
    expect(lines).toHaveLength(1 + 1 + tampered.precommits.length + 1)
  })

  it('dropped precommits: exit 1 and the missing power; --json lists the problems', async ({ expect }) => {
    const path = file('dropped.json', json({ ...answer.certificate, precommits: answer.certificate.precommits.slice(0, 2) }))
    const r = await verify(path)
    expect(r.code, show(r)).toBe(1)
    expect(r.stdout).toMatch(/^certificate is NOT valid:\n {2}precommits carry \d+ of \d+ voting power; more than 2\/3 \(\d+\) is required\n$/)
    const j = await verify(path, '--json')
    expect(j.code, show(j)).toBe(1)
    const out = JSON.parse(j.stdout) as { ok: boolean, problems: string[] }
    expect(out.ok).toBe(false)
    expect(out.problems).toHaveLength(1)
    expect(out.problems[0]).toMatch(/precommits carry/)
  })

  it('a missing file: exit 2 and says so', async ({ expect }) => {
    const r = await verify(join(dir, 'nowhere.json'))
    expect(r.code, show(r)).toBe(2)
    expect(r.stderr).toMatch(/verify: cannot read .*nowhere\.json: no such file — give the path of a certificate file/)
    expect(r.stdout).toBe('')
  })

  it('malformed JSON: exit 2, what is wrong and what is expected', async ({ expect }) => {
    const r = await verify(file('truncated.json', json(answer.certificate).slice(0, 120)))
    expect(r.code, show(r)).toBe(2)
    expect(r.stderr).toMatch(/truncated\.json is not valid JSON \(.+\) — expected a consensus certificate: the JSON form .*agentmesh-certificate\/1.* or the raw CBOR form/)
    expect(r.stderr).not.toMatch(/^\s+at /m)
  })

  it('the wrong format: exit 2 and names the format it reads', async ({ expect }) => {
    const wrong = await verify(file('v2.json', JSON.stringify({ ...certificateToJson(answer.certificate), format: 'agentmesh-certificate/2' })))
    expect(wrong.code, show(wrong)).toBe(2)
    expect(wrong.stderr).toMatch(/has format "agentmesh-certificate\/2"; this agentmesh reads "agentmesh-certificate\/1"/)
    const other = await verify(file('package.json', JSON.stringify({ name: 'x', version: '1.0.0' })))
    expect(other.code, show(other)).toBe(2)
    expect(other.stderr).toMatch(/has no "format" field, so it is not a certificate/)
    const broken = await verify(file('no-precommits.json', JSON.stringify({ ...certificateToJson(answer.certificate), precommits: 'x' })))
    expect(broken.code, show(broken)).toBe(2)
    expect(broken.stderr).toMatch(/is not a well-formed certificate: certificate precommits must be a list/)
  })

  it('no file at all: exit 2 with an example', async ({ expect }) => {
    const r = await verify()
    expect(r.code, show(r)).toBe(2)
    expect(r.stderr).toMatch(/verify: give one certificate file, e.g. agentmesh verify certificate.json/)
  })
})
