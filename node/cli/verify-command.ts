/** `agentmesh verify`: checks a consensus certificate offline, with no peer running. */
import { readFile } from 'node:fs/promises'
import {
  certificateFromJson, certificateId, consensusLimits, decodeCertificate, verifyCertificate,
  type Certificate, type CertificateCheck, type CertificateSummary
} from '../../protocols/consensus/index.ts'
import { ed25519Verifier } from '../network/crypto.ts'
import { consensusEmbed } from '../services/consensus-service.ts'
import { parse, UsageError } from './args.ts'

const FORMAT = 'agentmesh-certificate/1'
const EXPECTED = `expected a consensus certificate: the JSON form ({"format": "${FORMAT}", "statement", "round", "outcome", "evidence", "precommits"}) or the raw CBOR form`
/** The CBOR form is at most 2 MiB; its JSON form spells bytes in base64url (4/3 as long). */
const MAX_FILE_BYTES = 4 * consensusLimits.maxMessageBytes

export const verifyHelp = `agentmesh verify CERTIFICATE [--json]

Checks a consensus certificate offline: the requester's signature on the committee statement,
every signed answer in the evidence, that aggregating the evidence gives exactly the committed
outcome, and that the precommits are signed by committee members holding more than 2/3 of the
voting power, all for this round and value. Reads the JSON form (format "${FORMAT}") or the
raw CBOR form. Needs no running peer.

Prints the subtask, the outcome (the committed answer, or an escalation), the requester, the
voting power committed, which agents agreed and disagreed, and how many signatures were checked.
With --json prints one object: {"ok": true, "summary": {…}} or {"ok": false, "problems": [...]}.

Exit codes: 0 valid; 1 not valid (every problem is listed); 2 the file is missing, unreadable or
not a certificate.`

export async function verifyCommand (argv: string[]): Promise<number> {
  const { values, positionals } = parse('verify', argv, { json: { type: 'boolean' } }, true)
  const file = positionals[0]
  if (file === undefined || positionals.length > 1) throw new UsageError('verify: give one certificate file, e.g. agentmesh verify certificate.json')
  const certificate = await load(file)
  let check: CertificateCheck
  try {
    check = verifyCertificate(certificate, ed25519Verifier(), consensusEmbed)
  } catch (err) {
    // Not reached for the rules agentmesh knows; a guard against one it cannot recompute.
    check = { ok: false, problems: [`cannot recompute the committed outcome offline: ${(err as Error).message}`] }
  }
  if (values.json === true) {
    console.log(JSON.stringify(check.ok ? { ok: true, summary: check.summary } : { ok: false, problems: check.problems }))
  } else if (check.ok) {
    console.log(describe(check.summary, certificate))
  } else {
    console.log(`certificate is NOT valid:\n${check.problems.map(p => `  ${p}`).join('\n')}`)
  }
  return check.ok ? 0 : 1
}

/** The certificate in `file`, JSON or CBOR; anything else is a usage error that says what is wrong. */
async function load (file: string): Promise<Certificate> {
  let bytes: Uint8Array
  try {
    bytes = await readFile(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message
    throw new UsageError(`verify: cannot read ${file}: ${why} — give the path of a certificate file (JSON or CBOR)`)
  }
  if (bytes.byteLength === 0) throw new UsageError(`verify: ${file} is empty — ${EXPECTED}`)
  if (bytes.byteLength > MAX_FILE_BYTES) throw new UsageError(`verify: ${file} is ${bytes.byteLength} bytes, more than any certificate (${MAX_FILE_BYTES}) — ${EXPECTED}`)
  // The CBOR form starts with a map header (0xa0–0xbf), which is never the first byte of UTF-8
  // text: a file that is UTF-8 text is read as JSON, anything else as CBOR.
  let text: string | undefined
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {}
  if (text === undefined) {
    try {
      return decodeCertificate(bytes)
    } catch (err) {
      throw new UsageError(`verify: ${file} is not a certificate in JSON or CBOR (${(err as Error).message}) — ${EXPECTED}`)
    }
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new UsageError(`verify: ${file} is not valid JSON (${(err as Error).message}) — ${EXPECTED}`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`verify: ${file} holds JSON ${Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value}, not a certificate object — ${EXPECTED}`)
  }
  const format = (value as { format?: unknown }).format
  if (format === undefined) throw new UsageError(`verify: ${file} has no "format" field, so it is not a certificate — ${EXPECTED}`)
  if (format !== FORMAT) throw new UsageError(`verify: ${file} has format ${JSON.stringify(format)}; this agentmesh reads "${FORMAT}" — ${EXPECTED}`)
  try {
    return certificateFromJson(value)
  } catch (err) {
    throw new UsageError(`verify: ${file} is not a well-formed certificate: ${(err as Error).message} — ${EXPECTED}`)
  }
}

function describe (s: CertificateSummary, c: Certificate): string {
  const needed = Math.floor(2 * s.total / 3) + 1
  const percent = (100 * s.power / s.total).toFixed(1)
  const agents = (list: string[]): string => list.length === 0 ? 'none' : `${list.length}${list.map(a => `\n    ${a}`).join('')}`
  const lines = [
    'certificate is valid',
    `  instance     ${s.instance} (the subtask's consensus instance: GET /certificates/<instance>)`,
    `  certificate  ${certificateId(c)} (hash of this certificate's bytes)`,
    `  subtask      ${s.subtask} (input ${s.inputHash})`,
    `  outcome      ${outcome(s)}`,
    `  requester    ${s.requester}`,
    `  power        ${s.power} of ${s.total} voting power committed (${percent}%), more than 2/3 (at least ${needed} needed), in round ${c.round}`,
    `  agreed       ${agents(s.agreed)}`,
    `  disagreed    ${agents(s.disagreed)}`,
    `  signatures   ${s.signatureChecks} checked (1 committee statement, ${c.evidence.length} answers, ${c.precommits.length} precommits)`,
    ...Object.entries(s.endorsements).map(([agent, key]) => `  endorsed     ${agent} also signed its answer itself, with key ${key} (check it is the key you know this agent by)`)
  ]
  return lines.join('\n')
}

function outcome (s: CertificateSummary): string {
  if (s.outcome.kind === 'escalate') return 'escalated: the answers were too close to call, so no answer was committed'
  const answer = JSON.stringify(s.outcome.answer)
  return answer.length <= 100 ? `committed answer ${answer}` : `committed answer\n${JSON.stringify(s.outcome.answer, null, 2).split('\n').map(l => `    ${l}`).join('\n')}`
}
