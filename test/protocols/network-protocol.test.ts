// protocols/network: names in protocol ids, the network file, the retry schedule, the verdict.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { checkPeerNetwork, describeReachability, inRange, isBootstrapAddr, networkIds, NetworkFileError, parseCidr, parseIp, parseNetworkSpec, pnetKeyFile, reachability, retryDelay } from '../../protocols/network/index.ts'
import { multiaddr } from '@multiformats/multiaddr'
import { dialableIn, peerInfoMapper } from '../../node/network/addresses.ts'

describe('network ids', () => {
  it('every protocol id and topic carries the name; a bad name is refused', () => {
    const ids = networkIds('testnet')
    for (const v of [ids.rpcProtocol, ids.kadProtocol, ids.capabilityProtocol, ids.capabilityTopic, ids.certificateTopic]) expect(v).toContain('/testnet/')
    expect(ids.kadProtocol).toBe('/agentmesh/testnet/kad/1.0.0')
    expect(() => networkIds('Test Net')).toThrow(/not a network name/)
  })

  it('a peer speaking only another network is refused; plain relays and our own are not', () => {
    expect(checkPeerNetwork('a', ['/agentmesh/a/rpc/1.0.0'])).toEqual({ ok: true })
    expect(checkPeerNetwork('a', ['/ipfs/id/1.0.0', '/libp2p/circuit/relay/0.2.0/hop'])).toEqual({ ok: true })
    const r = checkPeerNetwork('a', ['/agentmesh/b/rpc/1.0.0'])
    expect(r.ok).toBe(false)
    expect(!r.ok && r.reason).toContain('--network b')
  })
})

describe('network file', () => {
  const id = '12D3KooWEqzJ9ayFycSsY81DVaeYzrC3kGMNjrmbuMX2CVeznfeJ'
  it('reads name, bootstrap in every address form, stun, psk and privateAddresses', () => {
    const spec = parseNetworkSpec({
      name: 'testnet',
      bootstrap: [`/ip4/203.0.113.7/tcp/4001/p2p/${id}`, `/dns4/seed.example.org/tcp/4002/ws/p2p/${id}`, `/dns6/seed.example.org/tcp/4001/p2p/${id}`, '/dnsaddr/bootstrap.example.org'],
      stun: ['stun:stun.example.org:3478'],
      psk: 'ab'.repeat(32),
      privateAddresses: false
    }, 'f.yaml')
    expect(spec.bootstrap).toHaveLength(4)
    expect(spec.psk).toEqual(new Uint8Array(32).fill(0xab))
    expect(new TextDecoder().decode(pnetKeyFile(spec.psk!))).toBe(`/key/swarm/psk/1.0.0/\n/base16/\n${'ab'.repeat(32)}`)
  })

  it('refuses what it cannot use, naming the field', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ bootstrap: [] }, /"name"/],
      [{ name: 'x', bootstrap: ['/ip4/1.2.3.4/tcp/1'] }, /bootstrap"\[0\].*not a peer address/],
      [{ name: 'x', psk: 'short' }, /64 hex digits/],
      [{ name: 'x', stun: ['http://x'] }, /STUN URL/],
      [{ name: 'x', bootstraps: [] }, /unknown setting "bootstraps"/],
      [[], /mapping/]
    ]
    for (const [doc, message] of bad) expect(() => parseNetworkSpec(doc, 'f.yaml')).toThrow(message)
    expect(() => parseNetworkSpec({ name: 'x', privateAddresses: 'yes' }, 'f.yaml')).toThrow(NetworkFileError)
  })

  it('never throws anything but NetworkFileError on arbitrary input', () => {
    fc.assert(fc.property(fc.anything(), doc => {
      try { parseNetworkSpec(doc, 'f') } catch (err) { expect(err).toBeInstanceOf(NetworkFileError) }
    }))
    fc.assert(fc.property(fc.string(), s => { expect(typeof isBootstrapAddr(s)).toBe('boolean') }))
  })
})

describe('retry schedule and reachability', () => {
  it('delays grow to the cap, jittered within the upper half', () => {
    fc.assert(fc.property(fc.nat(100), fc.double({ min: 0, max: 0.999999, noNaN: true }), (attempt, r) => {
      const ceiling = Math.min(60_000, 1000 * 2 ** Math.min(attempt, 30))
      const d = retryDelay(attempt, r)
      expect(d).toBeGreaterThanOrEqual(ceiling / 2 - 1)
      expect(d).toBeLessThanOrEqual(ceiling)
    }))
  })

  it('says public, relayed (with hole-punched peers) or unreachable', () => {
    expect(reachability({ public: true, directAddrs: ['/ip4/203.0.113.7/tcp/4001'], confirmed: false, relays: [], holePunched: [] }).kind).toBe('public')
    const relayed = reachability({ public: false, directAddrs: [], confirmed: false, relays: ['R'], holePunched: ['a', 'b'] })
    expect(describeReachability(relayed)).toBe('reachable through relay R; direct connections established by hole punching with 2 peers')
    expect(reachability({ public: false, directAddrs: [], confirmed: false, relays: [], holePunched: [] }).kind).toBe('unreachable')
  })
})

describe('agents per host', () => {
  it('the network file sets maxAgentsPerHost, a whole number from 1 to 10000', () => {
    expect(parseNetworkSpec({ name: 'net', maxAgentsPerHost: 8 }, 'f.yaml').maxAgentsPerHost).toBe(8)
    expect(parseNetworkSpec({ name: 'net' }, 'f.yaml').maxAgentsPerHost).toBeUndefined()
    for (const bad of [0, -1, 1.5, 10_001, '8', null]) {
      expect(() => parseNetworkSpec({ name: 'net', maxAgentsPerHost: bad }, 'f.yaml')).toThrow(/"maxAgentsPerHost" must be a whole number from 1 to 10000/)
    }
  })
})

describe('public ranges', () => {
  it('the network file takes CIDR ranges and refuses anything else', () => {
    expect(parseNetworkSpec({ name: 'lab', publicRanges: ['10.250.0.0/16', 'fd00::/8'] }, 'f.yaml').publicRanges).toEqual(['10.250.0.0/16', 'fd00::/8'])
    expect(parseNetworkSpec({ name: 'lab' }, 'f.yaml').publicRanges).toBeUndefined()
    for (const bad of ['10.250.0.0', '10.250.0.0/33', '300.1.1.1/8', 'fd00::/129', 'x/8', '1:2:3/16']) {
      expect(() => parseNetworkSpec({ name: 'lab', publicRanges: [bad] }, 'f.yaml')).toThrow(/publicRanges/)
    }
    expect(() => parseNetworkSpec({ name: 'lab', publicRanges: '10.0.0.0/8' }, 'f.yaml')).toThrow(NetworkFileError)
  })

  it('an IPv4 address is in a range exactly when its first `bits` bits match (property)', () => {
    const ip = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))
    fc.assert(fc.property(ip, ip, fc.integer({ min: 0, max: 32 }), (a, b, bits) => {
      const num = (t: number[]): number => t.reduce((acc, x) => acc * 256 + x, 0)
      const cidr = parseCidr(`${b.join('.')}/${bits}`)!
      const same = bits === 0 || Math.floor(num(a) / 2 ** (32 - bits)) === Math.floor(num(b) / 2 ** (32 - bits))
      return inRange(a.join('.'), cidr) === same
    }))
  })

  it('parses IPv6 with and without ::, and never mixes families', () => {
    expect(parseIp('::1')).toEqual({ family: 6, value: 1n })
    expect(parseIp('fd00::')?.value).toBe(0xfdn << 120n)
    expect(parseIp('1:2:3:4:5:6:7:8')?.value).toBe(0x00010002000300040005000600070008n)
    expect(parseIp('1::2::3')).toBeUndefined()
    expect(inRange('fd12:3456::1', parseCidr('fd00::/8')!)).toBe(true)
    expect(inRange('fe80::1', parseCidr('fd00::/8')!)).toBe(false)
    expect(inRange('10.250.0.1', parseCidr('fd00::/8')!)).toBe(false)
  })

  it('the DHT keeps public addresses and those in the ranges, drops other private ones and loopback', () => {
    const ranges = [parseCidr('10.250.0.0/16')!]
    const keep = (a: string): boolean => dialableIn(multiaddr(a), ranges)
    expect(keep('/ip4/10.250.0.10/tcp/4001')).toBe(true)
    expect(keep('/ip4/10.250.0.10/tcp/4001/p2p/12D3KooWEqzJ9ayFycSsY81DVaeYzrC3kGMNjrmbuMX2CVeznfeJ/p2p-circuit/webrtc')).toBe(true)
    expect(keep('/ip4/8.8.8.8/tcp/4001')).toBe(true) // a string, never dialled
    expect(keep('/ip4/192.168.1.10/tcp/4001')).toBe(false)
    expect(keep('/ip4/10.1.0.1/tcp/4001')).toBe(false)
    expect(keep('/ip4/127.0.0.1/tcp/4001')).toBe(false)
    expect(keep('/dns4/seed.example.org/tcp/4001')).toBe(true)
    const info = { id: undefined as never, multiaddrs: ['/ip4/192.168.1.10/tcp/1', '/ip4/10.250.1.1/tcp/2'].map(a => multiaddr(a)) }
    expect(peerInfoMapper({ name: 'lab', bootstrap: [], stun: [], privateAddresses: false, publicRanges: ['10.250.0.0/16'] })(info).multiaddrs.map(String)).toEqual(['/ip4/10.250.1.1/tcp/2'])
    expect(peerInfoMapper({ name: 'lan', bootstrap: [], stun: [], privateAddresses: true })(info).multiaddrs).toHaveLength(2)
    expect(peerInfoMapper({ name: 'net', bootstrap: [], stun: [], privateAddresses: false })(info).multiaddrs).toHaveLength(0)
  })
})
