// Small pieces of the network layer: how a connection is classified, that the bootstrap keeper
// never dials the peer itself, and that `join` takes an absolute path to a network file.
import { describe, it, expect, afterEach, vi } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Connection, ConnectionLimits } from '@libp2p/interface'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { keepBootstrapped, type BootstrapEvent } from '../../node/network/bootstrap.ts'
import { connectionKind } from '../../node/network/status.ts'
import { usePeers } from '../helpers/peers.ts'

const WAIT_MS = 20_000

async function newPeerId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

/** A port on 127.0.0.1 that nothing listens on: the OS hands one out, and it is closed again. */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve) })
  const port = (server.address() as { port: number }).port
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

describe('connectionKind', () => {
  /** Only what connectionKind reads: the remote address and the relay limits. */
  const conn = (remoteAddr: string, limits?: ConnectionLimits): Connection =>
    ({ remoteAddr: { toString: () => remoteAddr }, limits }) as unknown as Connection

  it('classifies WebRTC, relayed, WebSocket and TCP connections', async () => {
    const [relay, peer] = [await newPeerId(), await newPeerId()]
    const circuit = `/ip4/10.0.0.1/tcp/4001/p2p/${relay}/p2p-circuit`
    const limits: ConnectionLimits = { bytes: 1024n, seconds: 120 }
    // Hole punched: the dialler's address names the relay that carried the offer, but no limits apply.
    expect(connectionKind(conn(`${circuit}/webrtc/p2p/${peer}`))).toBe('webrtc')
    expect(connectionKind(conn(`/ip4/203.0.113.5/udp/4001/webrtc-direct/p2p/${peer}`))).toBe('webrtc')
    // Through the relay.
    expect(connectionKind(conn(`${circuit}/p2p/${peer}`, limits))).toBe('relayed')
    expect(connectionKind(conn(`${circuit}/p2p/${peer}`))).toBe('relayed')
    // Still on the relay while the WebRTC upgrade has not happened: the limits say so.
    expect(connectionKind(conn(`${circuit}/webrtc/p2p/${peer}`, limits))).toBe('relayed')
    // Limits mean a relay whatever the address looks like.
    expect(connectionKind(conn('/ip4/10.0.0.1/tcp/4001', limits))).toBe('relayed')
    expect(connectionKind(conn('/ip4/10.0.0.1/tcp/4002/ws', {}))).toBe('relayed')
    // Direct.
    expect(connectionKind(conn('/ip4/10.0.0.1/tcp/4002/ws'))).toBe('websocket')
    expect(connectionKind(conn(`/ip4/10.0.0.1/tcp/443/wss/p2p/${peer}`))).toBe('websocket')
    expect(connectionKind(conn('/dns4/seed.example.org/tcp/443/tls/ws'))).toBe('websocket')
    expect(connectionKind(conn('/ip4/127.0.0.1/tcp/7100'))).toBe('tcp')
    expect(connectionKind(conn(`/ip6/::1/tcp/7100/p2p/${peer}`))).toBe('tcp')
    expect(connectionKind(conn('/ip4/10.0.0.1/udp/4001/quic-v1'))).toBe('other')
  })

  it('goes by the protocols of the address, not by the words in a host name', async () => {
    const peer = await newPeerId()
    expect(connectionKind(conn(`/dns4/ws.example.org/tcp/4001/p2p/${peer}`))).toBe('tcp')
    expect(connectionKind(conn(`/dns4/webrtc.example.org/tcp/443/wss/p2p/${peer}`))).toBe('websocket')
    expect(connectionKind(conn(`/dns4/p2p-circuit.example.org/tcp/4001/p2p/${peer}`))).toBe('tcp')
  })
})

describe('keepBootstrapped', () => {
  const { peer } = usePeers('agentmesh-units-')

  it('skips entries that end with its own peer id and dials the others', async () => {
    const self = await peer({ agents: [] })
    const other = await peer({ agents: [] })
    const own = self.multiaddrs()[0]!
    expect(own).toMatch(new RegExp(`/p2p/${self.peerId}$`))
    // A shared network file may list this peer under an address it does not even listen on.
    const ownElsewhere = `/ip4/127.0.0.1/tcp/${await closedPort()}/p2p/${self.peerId}`
    const seed = other.multiaddrs()[0]!

    const dialled: string[] = []
    const dial = self.libp2p.dial.bind(self.libp2p)
    vi.spyOn(self.libp2p, 'dial').mockImplementation(async (target, options) => {
      dialled.push(String(target))
      return await dial(target, options)
    })
    const events: BootstrapEvent[] = []
    const keeper = keepBootstrapped(self.libp2p, [own, seed, ownElsewhere], e => events.push(e))
    try {
      expect(await keeper.firstRound).toEqual([{ addr: seed }])
    } finally {
      keeper.stop()
    }
    expect(dialled).toContain(seed)
    expect(dialled.filter(a => a.includes(self.peerId))).toEqual([])
    expect(events.filter(e => e.addr !== seed)).toEqual([])
    expect(events.map(e => e.type)).toEqual(['dialling', 'connected'])
    expect(events[1]).toMatchObject({ type: 'connected', addr: seed, peer: other.peerId })
    expect(keeper.connected()).toEqual([seed])
  })
})

// ---- agentmesh join <network file> ------------------------------------------------------------

const BIN = fileURLToPath(new URL('../../bin/agentmesh.js', import.meta.url))

interface Exit { code: number | null, signal: NodeJS.Signals | null }

const children: Array<{ child: ChildProcess, exited: Promise<Exit>, done: boolean }> = []
const homes: string[] = []

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (!c.done) {
      c.child.kill('SIGKILL')
      await c.exited
    }
  }
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true })
})

/** Starts `agentmesh ARGS`; `line` resolves with the first JSON line of stdout that satisfies `test`. */
function start (home: string, args: string[]): {
  pid: number
  output: () => string
  line: <T = Record<string, unknown>>(what: string, test: (o: Record<string, unknown>) => boolean) => Promise<T>
  exit: () => Promise<Exit>
} {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, AGENTMESH_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let exit: Exit | undefined
  const listeners = new Set<() => void>()
  const notify = (): void => { for (const l of [...listeners]) l() }
  const entry = { child, done: false, exited: new Promise<Exit>(resolve => { child.once('close', (code, signal) => { exit = { code, signal }; entry.done = true; resolve(exit); notify() }) }) }
  children.push(entry)
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; notify() })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; notify() })
  const transcript = (): string => `agentmesh ${args.join(' ')}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`
  const parsed = (): Array<Record<string, unknown>> => stdout.split('\n').filter(l => l.startsWith('{')).flatMap(l => {
    try { return [JSON.parse(l) as Record<string, unknown>] } catch { return [] } // a line still being written
  })
  return {
    pid: child.pid!,
    output: transcript,
    line: (what, test) => new Promise((resolve, reject) => {
      const check = (): void => {
        const found = parsed().find(test)
        if (found !== undefined) { done(); resolve(found as never); return }
        if (exit !== undefined) { done(); reject(new Error(`exited (${JSON.stringify(exit)}) before ${what}\n${transcript()}`)) }
      }
      const timer = setTimeout(() => { done(); reject(new Error(`timed out waiting for ${what}\n${transcript()}`)) }, WAIT_MS)
      const done = (): void => { clearTimeout(timer); listeners.delete(check) }
      listeners.add(check)
      check()
    }),
    exit: async () => await Promise.race([entry.exited, new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`no exit within ${WAIT_MS} ms\n${transcript()}`)), WAIT_MS).unref())])
  }
}

describe('agentmesh join with an absolute path to a network file', () => {
  // `.yaml` is recognised by its name; a file without that extension because it exists.
  for (const fileName of ['units-net.yaml', 'units-net']) {
    it(`${fileName}: joins the file's network and dials its bootstrap list`, async () => {
      const home = mkdtempSync(join(tmpdir(), 'agentmesh-units-'))
      homes.push(home)
      const bootstrap = `/ip4/127.0.0.1/tcp/${await closedPort()}/p2p/${await newPeerId()}`
      const file = join(home, fileName)
      writeFileSync(file, `name: unitsnet\nbootstrap:\n  - ${bootstrap}\nprivateAddresses: true\n`)
      const p = start(home, ['join', file, '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', '0', '--data', join(home, 'peer'), '--json'])
      const ready = await p.line<{ network: string, peerId: string }>('the ready line', o => o['event'] === 'ready')
      expect(ready.network, p.output()).toBe('unitsnet')
      expect(await p.line('a dialling event', o => o['event'] === 'dialling')).toEqual({ event: 'dialling', addr: bootstrap, attempt: 0 })
      process.kill(p.pid, 'SIGTERM')
      expect(await p.exit(), p.output()).toEqual({ code: 0, signal: null })
    }, 60_000)
  }
})
