/**
 * The network file (YAML) that `--network FILE` reads: which network, how to enter it.
 *
 * ```yaml
 * name: testnet                      # part of every protocol id and topic
 * bootstrap:                         # public nodes to enter through: /ip4, /ip6, /dns4, /dns6, /dnsaddr
 *   - /dns4/seed1.example.org/tcp/4001/p2p/12D3KooW...
 *   - /dnsaddr/bootstrap.example.org
 * stun: [stun:stun.example.org:3478] # ICE servers for WebRTC hole punching (none by default)
 * psk: 0f1e…(64 hex digits)          # optional: a private network (libp2p pnet); peers without it cannot connect
 * publicRanges: [10.250.0.0/16]      # optional: private ranges that are public in this network (a lab, a campus)
 * privateAddresses: true             # optional: every private address is dialable (a network inside one LAN)
 * maxAgentsPerHost: 32               # optional: agents one host may advertise here (default 32)
 * idWorkBits: 16                     # optional: proof of work every peer id must carry (default 0, off)
 * ```
 *
 * Parsed strictly: an unknown key or a malformed value is refused with its path and what to write.
 */
import { MAX_ID_WORK_BITS } from '../identity.ts'
import { NETWORK_NAME } from './ids.ts'
import { parseCidr } from './ranges.ts'

export interface NetworkSpec {
  name: string
  bootstrap: string[]
  stun: string[]
  /** 32 bytes, hex in the file. */
  psk?: Uint8Array
  /**
   * Treat private-range addresses (10/8, 192.168/16, …) as dialable: keep them in the DHT and let
   * DHT servers run on them. For LANs and the namespaced lab; never set on an internet network.
   */
  privateAddresses: boolean
  /**
   * Private ranges this network treats as public (CIDR): addresses in them are kept in the DHT and
   * dialled; other private addresses are dropped as on the internet. The lab's 10.250.0.0/16.
   */
  publicRanges?: string[]
  /** Agents one host may advertise in this network (Sybil cost: one key, a bounded share of every table). */
  maxAgentsPerHost?: number
  /**
   * Leading zero bits every peer id must show (`idWorkBits` in protocols/identity.ts): each identity
   * costs 2^bits key pairs to make, so a thousand fake hosts cost a thousand times that. 0 or unset: off.
   */
  idWorkBits?: number
}

export class NetworkFileError extends Error {
  override name = 'NetworkFileError'
}

const KEYS = ['name', 'bootstrap', 'stun', 'psk', 'privateAddresses', 'publicRanges', 'maxAgentsPerHost', 'idWorkBits'] as const
const MAX_AGENTS_PER_HOST = 10_000
const MAX_BOOTSTRAP = 64
const MAX_ADDR = 512

/** A bootstrap entry: an address with a peer id, or a /dnsaddr name that resolves to such addresses. */
const BOOTSTRAP_FORM = /^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/(tcp\/\d{1,5}(\/(ws|wss|tls\/ws))?|udp\/\d{1,5}\/(webrtc-direct|quic-v1)[^]*)\/p2p\/[1-9A-HJ-NP-Za-km-z]{46,60}$|^\/dnsaddr\/[A-Za-z0-9.-]+(\/p2p\/[1-9A-HJ-NP-Za-km-z]{46,60})?$/

export function isBootstrapAddr (addr: string): boolean {
  return addr.length <= MAX_ADDR && BOOTSTRAP_FORM.test(addr)
}

export function parseNetworkSpec (doc: unknown, where: string): NetworkSpec {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new NetworkFileError(`${where}: expected a mapping with name and bootstrap`)
  const o = doc as Record<string, unknown>
  for (const key of Object.keys(o)) {
    if (!(KEYS as readonly string[]).includes(key)) throw new NetworkFileError(`${where}: unknown setting "${key}" — allowed: ${KEYS.join(', ')}`)
  }
  if (typeof o.name !== 'string' || !NETWORK_NAME.test(o.name)) throw new NetworkFileError(`${where}: "name" must be 1–32 lower-case letters, digits and dashes, e.g. name: testnet`)
  const bootstrap = list(o.bootstrap, `${where}: "bootstrap"`, MAX_BOOTSTRAP)
  for (const [i, addr] of bootstrap.entries()) {
    if (!isBootstrapAddr(addr)) throw new NetworkFileError(`${where}: "bootstrap"[${i}] "${addr.slice(0, 80)}" is not a peer address — write /ip4/<ip>/tcp/<port>/p2p/<peer id>, /dns4/<host>/tcp/<port>/p2p/<peer id> or /dnsaddr/<domain>`)
  }
  const stun = list(o.stun, `${where}: "stun"`, 8)
  for (const [i, url] of stun.entries()) {
    if (!/^stuns?:[A-Za-z0-9.:[\]-]+$/.test(url) || url.length > 200) throw new NetworkFileError(`${where}: "stun"[${i}] must be a STUN URL such as stun:stun.example.org:3478`)
  }
  let psk: Uint8Array | undefined
  if (o.psk !== undefined) {
    if (typeof o.psk !== 'string' || !/^[0-9a-fA-F]{64}$/.test(o.psk)) throw new NetworkFileError(`${where}: "psk" must be 64 hex digits (32 random bytes; make one with: openssl rand -hex 32)`)
    psk = Uint8Array.from(o.psk.match(/../g)!.map(h => parseInt(h, 16)))
  }
  if (o.privateAddresses !== undefined && typeof o.privateAddresses !== 'boolean') throw new NetworkFileError(`${where}: "privateAddresses" must be true or false`)
  const publicRanges = o.publicRanges === undefined ? undefined : list(o.publicRanges, `${where}: "publicRanges"`, 32)
  for (const [i, r] of (publicRanges ?? []).entries()) {
    if (parseCidr(r) === undefined) throw new NetworkFileError(`${where}: "publicRanges"[${i}] "${r.slice(0, 60)}" is not a CIDR range — write e.g. 10.250.0.0/16 or fd00::/8`)
  }
  const quota = o.maxAgentsPerHost
  if (quota !== undefined && (typeof quota !== 'number' || !Number.isInteger(quota) || quota < 1 || quota > MAX_AGENTS_PER_HOST)) {
    throw new NetworkFileError(`${where}: "maxAgentsPerHost" must be a whole number from 1 to ${MAX_AGENTS_PER_HOST}`)
  }
  const work = o.idWorkBits
  if (work !== undefined && (typeof work !== 'number' || !Number.isInteger(work) || work < 0 || work > MAX_ID_WORK_BITS)) {
    throw new NetworkFileError(`${where}: "idWorkBits" must be a whole number from 0 to ${MAX_ID_WORK_BITS} (16 costs a new identity a few seconds)`)
  }
  return {
    name: o.name,
    bootstrap,
    stun,
    ...(psk !== undefined ? { psk } : {}),
    privateAddresses: o.privateAddresses === true,
    ...(publicRanges !== undefined ? { publicRanges } : {}),
    ...(quota !== undefined ? { maxAgentsPerHost: quota } : {}),
    ...(work !== undefined && work > 0 ? { idWorkBits: work } : {})
  }
}

/** The key file format @libp2p/pnet reads: a header, the encoding, the key. */
export function pnetKeyFile (psk: Uint8Array): Uint8Array {
  const hex = [...psk].map(b => b.toString(16).padStart(2, '0')).join('')
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${hex}`)
}

function list (value: unknown, at: string, max: number): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || !value.every(v => typeof v === 'string')) throw new NetworkFileError(`${at} must be a list of strings`)
  if (value.length > max) throw new NetworkFileError(`${at} lists ${value.length} entries; at most ${max}`)
  return value as string[]
}
