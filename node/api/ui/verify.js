// Checks a certificate in the page, from its own bytes, with WebCrypto's Ed25519: the dashboard
// shows what it verified itself, never a verdict the server hands it. The signed objects are
// `{ t, body, sig }` in CBOR, the signature over "agentmesh:<t>:1\n" followed by the body's bytes,
// by the key inside the signer's peer id (see protocols/consensus/signed.ts and certificate.ts).
//
// What is checked: the requester's signature on the committee statement; every evidence answer's
// signature by its agent's host, its subtask and input hash against the statement, its agent
// among the statement's executors, the evidence sorted by hash without repeats; the value id
// recomputed from the outcome and the evidence hashes; every precommit's signature by its voter,
// its instance (the statement's hash), round and value; voters being members, once each; and
// precommits carrying more than 2/3 of the committee's voting power.
// Not checked here (`agentmesh verify` does): that the outcome is what the evidence aggregates to
// under the committee's rule, answers' own endorsement signatures, and strict canonical encoding.
import { decode, encode } from './cbor.js'

const utf8 = new TextEncoder()
const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
/** identity multihash, 36 bytes: protobuf PublicKey { Type: Ed25519, Data: 32 bytes } */
const KEY_PREFIX = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20]

/**
 * `json`: the certificate as GET /certificates/<id> serves it. Resolves to
 * `{ ok, problems, instance, outcome, power, total, signatures }`; never throws.
 */
export async function verifyCertificate (json, subtle = globalThis.crypto.subtle) {
  const problems = []
  const keys = new Map()
  let signatures = 0
  const signedBy = async (object, peerId, what) => {
    const key = ed25519Key(peerId)
    if (key === undefined) return void problems.push(`${what}: ${short(peerId)} is not an Ed25519 peer id`)
    let imported = keys.get(peerId)
    if (imported === undefined) {
      imported = await subtle.importKey('raw', key, { name: 'Ed25519' }, false, ['verify'])
      keys.set(peerId, imported)
    }
    signatures++
    const message = concat(utf8.encode(`agentmesh:${object.t}:1\n`), object.body)
    if (!await subtle.verify({ name: 'Ed25519' }, imported, object.sig, message)) problems.push(`${what}: bad signature by ${short(peerId)}`)
  }
  try {
    if (json === null || typeof json !== 'object' || json.format !== 'agentmesh-certificate/1') throw new Error('not an agentmesh-certificate/1')
    const statementWire = base64url(json.statement)
    const statement = signedObject(statementWire, 'committee', 'committee statement')
    const s = statement.value
    await signedBy(statement, s.requester, 'committee statement')
    const instance = await sha256Hex(statementWire, subtle)
    const executors = new Set((s.executors ?? []).map(e => e.agent))

    const hashes = []
    for (const [i, text] of (json.evidence ?? []).entries()) {
      const wire = base64url(text)
      hashes.push(await sha256Hex(wire, subtle))
      const answer = signedObject(wire, 'answer', `evidence ${i}`)
      const a = answer.value
      const host = String(a.agent ?? '').split('/')[0]
      await signedBy(answer, host, `evidence ${i}`)
      if (a.subtask !== s.subtask || a.inputHash !== s.inputHash) problems.push(`evidence ${i}: answers another subtask or input`)
      if (!executors.has(a.agent)) problems.push(`evidence ${i}: ${short(a.agent)} is not an executor of the statement`)
    }
    if (hashes.some((h, i) => i > 0 && hashes[i - 1] >= h)) problems.push('evidence is not sorted by hash, or repeats an answer')
    const value = await sha256Hex(encode({ outcome: json.outcome, evidence: [...hashes].sort() }), subtle)

    const power = new Map((s.members ?? []).map(m => [m.id, m.power]))
    const total = [...power.values()].reduce((a, b) => a + b, 0)
    const voters = new Set()
    let committed = 0
    for (const [i, text] of (json.precommits ?? []).entries()) {
      const what = `precommit ${i}`
      const vote = signedObject(base64url(text), 'vote', what)
      const v = vote.value
      const before = problems.length
      await signedBy(vote, v.voter, what)
      if (problems.length > before) continue
      if (v.type !== 'precommit') { problems.push(`${what}: is a ${v.type}`); continue }
      if (v.instance !== instance) { problems.push(`${what}: is for another instance`); continue }
      if (v.round !== json.round) { problems.push(`${what}: is for round ${v.round}, not ${json.round}`); continue }
      if (v.value !== value) { problems.push(`${what}: is not for the committed value`); continue }
      if (!power.has(v.voter)) { problems.push(`${what}: ${short(v.voter)} is not a member`); continue }
      if (voters.has(v.voter)) { problems.push(`${what}: a second precommit by ${short(v.voter)}`); continue }
      voters.add(v.voter)
      committed += power.get(v.voter)
    }
    if (!(3 * committed > 2 * total)) problems.push(`precommits carry ${committed} of ${total} voting power; more than 2/3 is needed`)
    return { ok: problems.length === 0, problems, instance, outcome: json.outcome, power: committed, total, signatures }
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err))
    return { ok: false, problems, signatures }
  }
}

/** `{ t, body, sig }` with its body decoded into `value`. */
function signedObject (wire, kind, what) {
  let outer
  try {
    outer = decode(wire)
  } catch (err) {
    throw new Error(`${what}: ${err.message}`)
  }
  if (outer === null || typeof outer !== 'object' || outer.t !== kind) throw new Error(`${what}: not a signed ${kind}`)
  if (!(outer.body instanceof Uint8Array) || !(outer.sig instanceof Uint8Array) || outer.sig.byteLength !== 64) throw new Error(`${what}: malformed body or signature`)
  let value
  try {
    value = decode(outer.body)
  } catch (err) {
    throw new Error(`${what} body: ${err.message}`)
  }
  if (value === null || typeof value !== 'object') throw new Error(`${what}: the body is not a map`)
  return { t: outer.t, body: outer.body, sig: outer.sig, value }
}

/** The raw Ed25519 key inside a peer id (base58btc of the identity multihash), or undefined. */
export function ed25519Key (peerId) {
  if (typeof peerId !== 'string' || !peerId.startsWith('12D3KooW') || peerId.length > 64) return undefined
  const bytes = base58(peerId)
  if (bytes === undefined || bytes.length !== KEY_PREFIX.length + 32) return undefined
  if (KEY_PREFIX.some((b, i) => bytes[i] !== b)) return undefined
  return bytes.slice(KEY_PREFIX.length)
}

function base58 (text) {
  const digits = [0]
  for (const ch of text) {
    let carry = BASE58.indexOf(ch)
    if (carry < 0) return undefined
    for (let i = 0; i < digits.length; i++) {
      carry += digits[i] * 58
      digits[i] = carry & 0xff
      carry >>= 8
    }
    while (carry > 0) { digits.push(carry & 0xff); carry >>= 8 }
  }
  let zeros = 0
  while (text[zeros] === '1') zeros++
  while (digits.length > 1 && digits[digits.length - 1] === 0) digits.pop()
  const body = text.length === zeros ? [] : digits.reverse()
  return Uint8Array.from([...new Array(zeros).fill(0), ...body])
}

function base64url (text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text)) throw new Error('expected base64url text')
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/')
  const binary = atob(b64 + '='.repeat((4 - b64.length % 4) % 4))
  return Uint8Array.from(binary, c => c.charCodeAt(0))
}

async function sha256Hex (bytes, subtle) {
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes))
  return [...digest].map(b => b.toString(16).padStart(2, '0')).join('')
}

function concat (a, b) {
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a, 0)
  out.set(b, a.byteLength)
  return out
}

function short (id) {
  const s = String(id)
  return s.length > 24 ? `${s.slice(0, 12)}…${s.slice(-8)}` : s
}
