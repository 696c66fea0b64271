/**
 * Address ranges a network treats as public although they are private (RFC 1918, ULA): the lab's
 * "internet" is 10.250.0.0/16, a campus network may be 10.0.0.0/8. Addresses in these ranges are
 * dialable for everyone in the network; other private addresses (a home LAN behind a NAT) are not,
 * exactly as on the internet. Pure: parsing and matching only.
 */

export interface IpRange { family: 4 | 6, base: bigint, bits: number }

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

/** An IPv4 or IPv6 address as a number, or undefined when it is not one. */
export function parseIp (text: string): { family: 4 | 6, value: bigint } | undefined {
  const v4 = IPV4.exec(text)
  if (v4 !== null) {
    const parts = v4.slice(1).map(Number)
    if (parts.some(p => p > 255)) return undefined
    return { family: 4, value: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) }
  }
  if (!/^[0-9a-fA-F:]{2,39}$/.test(text) || text.split('::').length > 2) return undefined
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined]
  const groups = (s: string): string[] => s === '' ? [] : s.split(':')
  const h = groups(head)
  const t = tail === undefined ? [] : groups(tail)
  const missing = 8 - h.length - t.length
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined
  const all = [...h, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...t]
  if (all.some(g => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined
  return { family: 6, value: all.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) }
}

/** `10.250.0.0/16`, `fd00::/8`: the range, or undefined when malformed. */
export function parseCidr (text: string): IpRange | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text)
  if (m === null) return undefined
  const ip = parseIp(m[1]!)
  const bits = Number(m[2])
  if (ip === undefined || bits > (ip.family === 4 ? 32 : 128)) return undefined
  const width = ip.family === 4 ? 32 : 128
  const mask = ((1n << BigInt(bits)) - 1n) << BigInt(width - bits)
  return { family: ip.family, base: ip.value & mask, bits }
}

export function inRange (ip: string, range: IpRange): boolean {
  const a = parseIp(ip)
  if (a === undefined || a.family !== range.family) return false
  const width = range.family === 4 ? 32 : 128
  const mask = ((1n << BigInt(range.bits)) - 1n) << BigInt(width - range.bits)
  return (a.value & mask) === range.base
}
