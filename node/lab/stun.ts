/**
 * The lab's STUN server (Debian's coturn `turnserver`, STUN only, every option on the command line,
 * no config file from /etc) and a minimal RFC 5389 binding request/response codec for probes.
 */
import { randomBytes } from 'node:crypto'
import type { ChildProcess } from 'node:child_process'
import { execIn } from './netns.ts'

export const STUN_PORT = 3478
export const MAGIC_COOKIE = 0x2112A442
const BINDING_REQUEST = 0x0001
const BINDING_SUCCESS = 0x0101
const ATTR_MAPPED_ADDRESS = 0x0001
const ATTR_XOR_MAPPED_ADDRESS = 0x0020

/** Arguments for `turnserver`: `-n` (no config file), STUN only, no CLI, no TLS/DTLS, logs and state in `dir`. */
export function turnserverArgs (addr: string, port: number, dir: string): string[] {
  return [
    '-n', '--no-cli', '--stun-only', '--no-tls', '--no-dtls', '--no-rfc5780', '--no-software-attribute',
    '--listening-ip', addr, '--listening-port', String(port), '--relay-ip', addr,
    '--log-file', `${dir}/turnserver.log`, '--no-stdout-log', '--simple-log',
    '--pidfile', `${dir}/turnserver.pid`, '--userdb', `${dir}/turndb`
  ]
}

/**
 * Resolves once a UDP socket is bound to `addr:port` inside `ns` (polled with `ss`), rejects if
 * `child` exits first.
 */
export async function untilUdpListening (ns: string, addr: string, port: number, child: ChildProcess, what = 'turnserver'): Promise<void> {
  let exited: string | undefined
  const onExit = (code: number | null, signal: NodeJS.Signals | null): void => { exited = `${what} exited (${code ?? signal ?? '?'})` }
  child.once('exit', onExit)
  try {
    for (let i = 0; ; i++) {
      if (exited !== undefined) throw new Error(exited)
      const out = await execIn(ns, 'ss', ['-H', '-l', '-u', '-n'])
      if (out.split('\n').some(l => l.includes(`${addr}:${port} `))) return
      if (i > 600) throw new Error(`${what} did not bind ${addr}:${port} after ${i} polls`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  } finally {
    child.off('exit', onExit)
  }
}

/** A STUN binding request (20-byte header, no attributes) and its transaction id. */
export function bindingRequest (transactionId: Uint8Array = randomBytes(12)): { bytes: Buffer, transactionId: Buffer } {
  const bytes = Buffer.alloc(20)
  bytes.writeUInt16BE(BINDING_REQUEST, 0)
  bytes.writeUInt16BE(0, 2)
  bytes.writeUInt32BE(MAGIC_COOKIE, 4)
  Buffer.from(transactionId).copy(bytes, 8, 0, 12)
  return { bytes, transactionId: bytes.subarray(8, 20) }
}

/**
 * Parses a binding success response: the (XOR-)MAPPED-ADDRESS it reports, IPv4 only. Returns
 * undefined for anything else (another message type, wrong cookie or transaction id, no address).
 */
export function parseBindingResponse (msg: Uint8Array, transactionId?: Uint8Array): { address: string, port: number } | undefined {
  const b = Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength)
  if (b.length < 20 || b.readUInt16BE(0) !== BINDING_SUCCESS || b.readUInt32BE(4) !== MAGIC_COOKIE) return undefined
  if (transactionId !== undefined && !b.subarray(8, 20).equals(Buffer.from(transactionId))) return undefined
  const end = Math.min(b.length, 20 + b.readUInt16BE(2))
  let plain: { address: string, port: number } | undefined
  for (let off = 20; off + 4 <= end;) {
    const type = b.readUInt16BE(off)
    const len = b.readUInt16BE(off + 2)
    const v = off + 4
    if (v + len > end) break
    if ((type === ATTR_XOR_MAPPED_ADDRESS || type === ATTR_MAPPED_ADDRESS) && len >= 8 && b[v + 1] === 0x01) {
      const xor = type === ATTR_XOR_MAPPED_ADDRESS
      const port = b.readUInt16BE(v + 2) ^ (xor ? MAGIC_COOKIE >>> 16 : 0)
      const raw = (b.readUInt32BE(v + 4) ^ (xor ? MAGIC_COOKIE : 0)) >>> 0
      const address = [raw >>> 24, (raw >>> 16) & 255, (raw >>> 8) & 255, raw & 255].join('.')
      if (xor) return { address, port }
      plain = { address, port }
    }
    off = v + len + ((4 - (len % 4)) % 4)
  }
  return plain
}
