/**
 * Signed records on the wire: `{ t: 'vcv' | 'tomb', body: <canonical CBOR of the body>, sig }`.
 * The signature covers a domain tag plus the body bytes, so a VCV signature can never be replayed
 * as a tombstone or as any other protocol's message.
 */
import { bytesEqual, decodeCanonical, encodeCanonical, oncePerArray } from '../cbor.ts'
import { sha256 } from '../hash.ts'
import type { Signer, Verifier } from '../identity.ts'
import {
  limits, splitAgentId, validateTombstoneBody, validateVcvBody, ValidationError,
  type TombstoneBody, type VcvBody
} from './schema.ts'

export interface SignedVcv {
  kind: 'vcv'
  body: VcvBody
  bodyBytes: Uint8Array
  sig: Uint8Array
  /** The whole record as sent; forwarded unchanged so its gossip message id stays the same. */
  wire: Uint8Array
}

export interface SignedTombstone {
  kind: 'tomb'
  body: TombstoneBody
  bodyBytes: Uint8Array
  sig: Uint8Array
  wire: Uint8Array
}

export type SignedRecord = SignedVcv | SignedTombstone

const encoder = new TextEncoder()
const DOMAIN = { vcv: encoder.encode('agentmesh:vcv:1\n'), tomb: encoder.encode('agentmesh:tomb:1\n') }

function signingInput (kind: 'vcv' | 'tomb', bodyBytes: Uint8Array): Uint8Array {
  const domain = DOMAIN[kind]
  const out = new Uint8Array(domain.byteLength + bodyBytes.byteLength)
  out.set(domain, 0)
  out.set(bodyBytes, domain.byteLength)
  return out
}

export function schemaHash (inputSchema: string, outputSchema: string): Uint8Array {
  return sha256(`${inputSchema}\n${outputSchema}`)
}

export function signVcv (body: VcvBody, signer: Signer): SignedVcv {
  return sign('vcv', validateVcvBody(body), signer) as SignedVcv
}

export function signTombstone (body: TombstoneBody, signer: Signer): SignedTombstone {
  return sign('tomb', validateTombstoneBody(body), signer) as SignedTombstone
}

function sign (kind: 'vcv' | 'tomb', body: VcvBody | TombstoneBody, signer: Signer): SignedRecord {
  if (splitAgentId(body.agent)?.host !== signer.peerId) throw new Error(`${signer.peerId} cannot sign for ${body.agent}`)
  const bodyBytes = encodeCanonical(body)
  const sig = signer.sign(signingInput(kind, bodyBytes))
  const wire = encodeCanonical({ t: kind, body: bodyBytes, sig })
  if (wire.byteLength > limits.maxMessageBytes) throw new ValidationError(`record is ${wire.byteLength} bytes, limit ${limits.maxMessageBytes}`)
  return { kind, body, bodyBytes, sig, wire } as SignedRecord
}

/**
 * Parses and validates a record without checking its signature: the table first decides whether
 * the record could change anything, and pays for verification only then.
 */
export const decodeRecord: (wire: Uint8Array) => SignedRecord = oncePerArray(decodeFresh)

function decodeFresh (wire: Uint8Array): SignedRecord {
  if (wire.byteLength > limits.maxMessageBytes) {
    throw new ValidationError(`record is ${wire.byteLength} bytes, limit ${limits.maxMessageBytes}`)
  }
  const { t, body, sig, ...rest } = decodeMap(wire, 'record')
  if (Object.keys(rest).length > 0) throw new ValidationError(`record has unknown field "${Object.keys(rest)[0]}"`)
  if (t !== 'vcv' && t !== 'tomb') throw new ValidationError(`unknown record type ${JSON.stringify(t)}`)
  if (!(body instanceof Uint8Array)) throw new ValidationError('record body must be bytes')
  if (!(sig instanceof Uint8Array) || sig.byteLength !== 64) throw new ValidationError('signature must be 64 bytes')
  const decoded = decodeOrFail(body, 'body')
  if (t === 'vcv') {
    const vcv = validateVcvBody(decoded)
    if (!bytesEqual(schemaHash(vcv.inputSchema, vcv.outputSchema), vcv.schemaHash)) {
      throw new ValidationError('schemaHash does not match the schemas')
    }
    return { kind: 'vcv', body: vcv, bodyBytes: body, sig, wire }
  }
  return { kind: 'tomb', body: validateTombstoneBody(decoded), bodyBytes: body, sig, wire }
}

export function verifyRecord (record: SignedRecord, verifier: Verifier): boolean {
  const host = splitAgentId(record.body.agent)?.host
  return host !== undefined && verifier.verify(host, signingInput(record.kind, record.bodyBytes), record.sig)
}

/** `bytes` decoded as a CBOR map (the capability wire formats are all maps), or a ValidationError naming `what`. */
export function decodeMap (bytes: Uint8Array, what: string): Record<string, unknown> {
  const value = decodeOrFail(bytes, what)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ValidationError(`${what} must be a map`)
  return value as Record<string, unknown>
}

function decodeOrFail (bytes: Uint8Array, what: string): unknown {
  try {
    return decodeCanonical(bytes)
  } catch (err) {
    throw new ValidationError(`${what} is not canonical CBOR: ${(err as Error).message}`)
  }
}

