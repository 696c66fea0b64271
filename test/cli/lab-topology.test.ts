// The lab's namespaces and NATs, checked with tiny TCP/UDP node processes inside them: LAN → seed works
// (seen from the router's WAN address), nothing opens a connection into a LAN, two LANs cannot reach
// each other by LAN address, coturn answers STUN with the router's WAN address, and two LAN hosts
// can punch UDP holes to each other with the ports STUN reported (endpoint-independent mapping).
// Needs root, nft and turnserver; otherwise it is skipped with the reason printed.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { buildLab, labSupport, sweepStale, type Host, type Lab } from '../../node/lab/topology.ts'
import { bindingRequest, parseBindingResponse } from '../../node/lab/stun.ts'

const support = await labSupport()
if (!support.ok) console.log(`lab-topology: skipped, ${support.reason}`)

/** Bound for connections that should succeed: generous, so a loaded machine does not fail them. */
const LONG = 60_000

type Event = Record<string, unknown> & { ev: string }

/** A node process inside a lab host, speaking JSON lines: events out on stdout, commands in on stdin. */
interface Proc { child: ChildProcess, next: (ev?: string) => Promise<Event>, send: (cmd: unknown) => void }

const TCP_SERVER = `
const net = require('node:net')
const [host, port] = process.argv.slice(1)
const out = o => process.stdout.write(JSON.stringify(o) + '\\n')
const server = net.createServer(s => { s.on('error', () => {}); out({ ev: 'accepted', remote: s.remoteAddress }); s.end('hi') })
server.on('error', e => { out({ ev: 'error', code: e.code }); process.exit(1) })
server.listen(Number(port), host, () => out({ ev: 'listening' }))
`

// Connects once, giving up after `bound` ms: 2 s for the negative checks (a bound, not a timing
// assertion), 60 s where a connection is expected.
const TCP_CLIENT = `
const net = require('node:net')
const [host, port, bound] = process.argv.slice(1)
const out = o => { process.stdout.write(JSON.stringify(o) + '\\n'); process.exit(0) }
const s = net.connect({ host, port: Number(port) }, () => out({ ev: 'connected' }))
s.on('error', e => out({ ev: 'failed', code: e.code }))
setTimeout(() => out({ ev: 'failed', code: 'timeout' }), Number(bound))
`

const UDP_SOCKET = `
const dgram = require('node:dgram')
const out = o => process.stdout.write(JSON.stringify(o) + '\\n')
const s = dgram.createSocket('udp4')
s.on('message', (m, r) => out({ ev: 'msg', hex: m.toString('hex'), address: r.address, port: r.port }))
s.bind(0, () => out({ ev: 'bound', port: s.address().port }))
require('node:readline').createInterface({ input: process.stdin }).on('line', l => {
  const c = JSON.parse(l); s.send(Buffer.from(c.hex, 'hex'), c.port, c.address)
})
process.stdin.on('end', () => process.exit(0))
`

function node (lab: Lab, host: Host, code: string, args: Array<string | number> = []): Proc {
  const child = lab.spawn(host, process.execPath, ['-e', code, ...args.map(String)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const queue: Event[] = []
  const waiters: Array<() => void> = []
  let ended = false
  createInterface({ input: child.stdout! }).on('line', line => {
    queue.push(JSON.parse(line) as Event)
    waiters.splice(0).forEach(w => { w() })
  }).on('close', () => { ended = true; waiters.splice(0).forEach(w => { w() }) })
  const next = async (ev?: string): Promise<Event> => {
    for (;;) {
      const i = queue.findIndex(e => ev === undefined || e.ev === ev)
      if (i >= 0) return queue.splice(i, 1)[0]!
      if (ended) throw new Error(`process in ${host.ns} ended before event ${ev ?? '(any)'}`)
      await new Promise<void>(resolve => waiters.push(resolve))
    }
  }
  return { child, next, send: cmd => { child.stdin!.write(JSON.stringify(cmd) + '\n') } }
}

/** Starts a TCP server in `host` on `port` and resolves once it listens. */
async function tcpServer (lab: Lab, host: Host, port: number): Promise<Proc> {
  const p = node(lab, host, TCP_SERVER, [host.addr, port])
  expect((await p.next()).ev).toBe('listening')
  return p
}

/** One TCP connect attempt from `host`: 'connected' or the failure code ('timeout' after `boundMs`). */
async function tcpConnect (lab: Lab, host: Host, addr: string, port: number, boundMs = 2000): Promise<string> {
  const e = await node(lab, host, TCP_CLIENT, [addr, port, boundMs]).next()
  return e.ev === 'connected' ? 'connected' : String(e.code)
}

/** A UDP socket in `host` and its mapped address as the STUN server reports it. */
async function udpWithStun (lab: Lab, host: Host): Promise<{ sock: Proc, local: number, mapped: { address: string, port: number } }> {
  const sock = node(lab, host, UDP_SOCKET)
  const local = (await sock.next('bound')).port as number
  const req = bindingRequest()
  sock.send({ hex: req.bytes.toString('hex'), address: lab.stun.addr, port: lab.stun.port })
  const reply = await sock.next('msg')
  expect(reply.address).toBe(lab.stun.addr)
  const mapped = parseBindingResponse(Buffer.from(reply.hex as string, 'hex'), req.transactionId)
  expect(mapped).toBeDefined()
  return { sock, local, mapped: mapped! }
}

describe.skipIf(!support.ok)('lab topology (namespaces, NAT, STUN)', () => {
  let lab: Lab
  beforeAll(async () => { lab = await buildLab({ seeds: 1, lans: 2, peersPerLan: 2 }) })
  afterAll(async () => {
    if (lab === undefined) return
    await lab.destroy()
    await lab.destroy() // idempotent
    expect(await lab.namespacesLeft()).toBe(0)
  })

  const seed = (): Host => lab.seeds[0]!
  const lan = (k: number) => lab.lans[k]!

  it('builds the requested shape, every host in its own namespace', () => {
    expect(lab.seeds).toHaveLength(1)
    expect(lab.lans.map(l => l.peers.length)).toEqual([2, 2])
    expect(lab.lans.map(l => l.wanAddr)).toEqual(['10.250.1.1', '10.250.1.2'])
    expect(new Set(lab.namespaces).size).toBe(lab.namespaces.length)
    expect(lab.namespaces.every(n => n.startsWith(lab.prefix))).toBe(true)
  })

  it('sweepStale leaves a live run alone', async () => {
    expect(await sweepStale()).not.toContain(lab.namespaces[0])
    expect(await lab.namespacesLeft()).toBe(lab.namespaces.length)
  })

  it('a LAN host connects to a seed, which sees it as its router\'s WAN address', async () => {
    const server = await tcpServer(lab, seed(), 7001)
    expect(await tcpConnect(lab, lan(0).peers[0]!, seed().addr, 7001, LONG)).toBe('connected')
    expect((await server.next('accepted')).remote).toBe(lan(0).wanAddr)
    expect(await tcpConnect(lab, lan(1).peers[1]!, seed().addr, 7001, LONG)).toBe('connected')
    expect((await server.next('accepted')).remote).toBe(lan(1).wanAddr)
  })

  it('a seed cannot open a connection into a LAN, not even with a route through the router', async () => {
    const target = lan(0).peers[0]!
    await tcpServer(lab, target, 7002)
    expect(await tcpConnect(lab, lan(0).peers[1]!, target.addr, 7002, LONG)).toBe('connected') // it does listen
    expect(await tcpConnect(lab, seed(), target.addr, 7002)).not.toBe('connected') // no route to 192.168/16
    expect(await tcpConnect(lab, seed(), lan(0).wanAddr, 7002)).not.toBe('connected') // no port forward
    await lab.exec(seed(), 'ip', ['route', 'add', lan(0).subnet, 'via', lan(0).wanAddr])
    try {
      expect(await tcpConnect(lab, seed(), target.addr, 7002)).toBe('timeout') // dropped by the router
    } finally {
      await lab.exec(seed(), 'ip', ['route', 'del', lan(0).subnet])
    }
  })

  it('hosts in different LANs cannot reach each other by LAN address', async () => {
    const target = lan(1).peers[0]!
    await tcpServer(lab, target, 7003)
    expect(await tcpConnect(lab, lan(1).peers[1]!, target.addr, 7003, LONG)).toBe('connected')
    expect(await tcpConnect(lab, lan(0).peers[0]!, target.addr, 7003)).not.toBe('connected')
  })

  it('the STUN server reports a LAN host as its router\'s WAN address', async () => {
    const { sock, local, mapped } = await udpWithStun(lab, lan(0).peers[1]!)
    expect(mapped.address).toBe(lan(0).wanAddr)
    expect(mapped.port).toBe(local) // masquerade kept the source port
    sock.child.stdin!.end()
  })

  it('two LAN hosts punch UDP holes with the ports STUN reported (endpoint-independent mapping)', async () => {
    const a = await udpWithStun(lab, lan(0).peers[0]!)
    const b = await udpWithStun(lab, lan(1).peers[0]!)
    const hex = (s: string): string => Buffer.from(s).toString('hex')
    // A's first packet reaches B's router before B has sent anything and is dropped there; A then
    // re-asks STUN (a round trip through its router) before B starts, so that order really happens.
    a.sock.send({ hex: hex('from a'), ...b.mapped })
    a.sock.send({ hex: bindingRequest().bytes.toString('hex'), address: lab.stun.addr, port: lab.stun.port })
    await a.sock.next('msg')
    const heard = async (p: Proc, from: { address: string, port: number }, text: string): Promise<void> => {
      for (;;) {
        const m = await p.next('msg')
        if (m.hex === hex(text)) { expect({ address: m.address, port: m.port }).toEqual(from); return }
      }
    }
    const aHeard = heard(a.sock, b.mapped, 'from b')
    const bHeard = heard(b.sock, a.mapped, 'from a')
    let done = false
    void Promise.all([aHeard, bHeard]).finally(() => { done = true })
    // Keep both sides sending (as ICE does) until each has heard the other; the test timeout bounds it.
    const resend = setInterval(() => {
      if (done) return
      b.sock.send({ hex: hex('from b'), ...a.mapped })
      a.sock.send({ hex: hex('from a'), ...b.mapped })
    }, 100)
    try {
      b.sock.send({ hex: hex('from b'), ...a.mapped })
      await Promise.all([aHeard, bHeard])
    } finally {
      clearInterval(resend)
      a.sock.child.stdin!.end()
      b.sock.child.stdin!.end()
    }
  })
})
