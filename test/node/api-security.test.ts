// The local API against hostile clients: web pages (Host, Origin, Sec-Fetch-Site), requests
// without the token, malformed targets, slow bodies and too many connections; the token file;
// --api-listen beyond loopback (HTTPS and the token on every route). A real peer, real sockets.
import { describe, it, expect, beforeAll, afterAll, afterEach, vi } from 'vitest'
import { execFileSync, spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defaultAgentSpecs } from '../../node/agents/registry.ts'
import { startApi, type Api, type ApiOptions } from '../../node/api/api.ts'
import { PeerStartError, startPeer, type Peer } from '../../node/peer.ts'
import { gatedAgent } from '../helpers/gated-agent.ts'

const BIN = fileURLToPath(new URL('../../bin/agentmesh.js', import.meta.url))
const gate = gatedAgent('waiter', { skills: ['wait'] })
const dirs: string[] = []
const tmp = (prefix: string): string => { const d = mkdtempSync(join(tmpdir(), prefix)); dirs.push(d); return d }
let peer: Peer
let tls: { cert: string, key: string, certFile: string, keyFile: string }
const apis: Api[] = []

beforeAll(async () => {
  peer = await startPeer({ dataDir: tmp('agentmesh-apisec-'), listen: ['/ip4/127.0.0.1/tcp/0'], agents: defaultAgentSpecs(), customAgents: [gate] })
  await peer.whenIndexed()
  // A self-signed certificate for 127.0.0.1, made for this run.
  const dir = tmp('agentmesh-tls-')
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' })
  tls = { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile }
})
afterEach(async () => { await Promise.all(apis.splice(0).map(async a => { await a.close() })) })
afterAll(async () => {
  gate.release()
  await peer?.stop()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

async function api (options: Partial<ApiOptions> = {}): Promise<Api> {
  const a = await startApi(peer, { port: 0, ...options })
  apis.push(a)
  return a
}

interface Answer { status: number, headers: Record<string, string>, body: string, json: () => Record<string, unknown> }

/** Sends raw bytes on a fresh connection and reads until the server closes it (or one response, with keepAlive). */
function raw (port: number, text: string): Promise<Answer & { socket: Socket }> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    let data = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => { data += d })
    // A connection the server resets (over the cap) is just closed, with nothing read.
    socket.on('error', () => {})
    socket.on('close', () => { resolve({ ...parse(data), socket }) })
    socket.write(text)
  })
}

function parse (data: string): Answer {
  const [head = '', ...rest] = data.split('\r\n\r\n')
  const [status = '', ...lines] = head.split('\r\n')
  const headers = Object.fromEntries(lines.map(l => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
  const body = rest.join('\r\n\r\n')
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(status)?.[1] ?? 0), headers, body, json: () => JSON.parse(body) as Record<string, unknown> }
}

/** One request with the given headers (Host defaults to 127.0.0.1:port), on a connection closed after it. */
async function call (port: number, method: string, target: string, headers: Record<string, string> = {}, body = ''): Promise<Answer> {
  const all = { host: `127.0.0.1:${port}`, connection: 'close', 'content-length': String(Buffer.byteLength(body)), ...headers }
  return await raw(port, `${method} ${target} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`)
}

/** One request over HTTPS, trusting the test's certificate. */
function callTls (port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number, json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, ca: tls.cert, servername: 'localhost', headers }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => { body += d }).on('end', () => {
        // The dashboard's files are not JSON.
        const json = (res.headers['content-type'] ?? '').includes('json') ? JSON.parse(body) as Record<string, unknown> : {}
        resolve({ status: res.statusCode ?? 0, json })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

const TASK = 'subtasks:\n  - id: s\n    capability: { text: sort a list }\n    input: { items: [3, 1, 2] }\n'

describe('the API refuses what would crash it', () => {
  it('malformed request targets answer 400 with a reason, and the peer still answers', async () => {
    const { port } = await api()
    for (const target of ['/tasks/%ZZ', '/certificates/%E0%A4%A', '//%', '/\\evil.example/status', 'http://evil.example/status', '*', `/status?${'a'.repeat(3000)}`]) {
      const answer = await call(port, 'GET', target)
      expect(answer.status, target).toBe(400)
      expect(answer.json().error, target).toMatch(/percent-encoding|request target/)
    }
    expect((await call(port, 'GET', '/tasks/%ZZ')).json().error).toMatch(/malformed percent-encoding in "%ZZ"/)
    expect((await call(port, 'GET', '/status')).status).toBe(200)
    expect((await call(port, 'GET', '/tasks/no%20such')).json().error).toBe('no task "no such" on this peer')
  })

  it('an exception in a route answers 500 with the reason, is logged, and the API keeps serving', async () => {
    // The same peer, except that reading its agents throws.
    const broken = Object.create(peer, { capability: { get: () => { throw new Error('boom') } } }) as Peer
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const a = await startApi(broken, { port: 0, dataDir: tmp('agentmesh-broken-') })
      apis.push(a)
      const answer = await call(a.port, 'GET', '/agents')
      expect(answer.status).toBe(500)
      expect(answer.json()).toEqual({ error: 'internal error: boom' })
      expect(logged).toHaveBeenCalledWith(expect.stringMatching(/^api: GET "\/agents" failed: Error: boom/))
      expect((await call(a.port, 'GET', '/certificates')).status).toBe(200)
    } finally {
      logged.mockRestore()
    }
  })
})

describe('web pages are refused', () => {
  it('a Host that is not loopback (DNS rebinding) answers 421', async () => {
    const { port } = await api()
    for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1:${port + 1}`, `10.0.0.1:${port}`]) {
      const answer = await call(port, 'GET', '/status', { host })
      expect(answer.status, host).toBe(421)
      expect(answer.json().error).toMatch(/is not this API/)
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
      expect((await call(port, 'GET', '/status', { host })).status, host).toBe(200)
    }
  })

  it('another origin is refused for GET and POST, even with the token; Sec-Fetch-Site: cross-site too', async () => {
    const { port, token } = await api()
    const evil = { origin: 'http://evil.example' }
    expect((await call(port, 'GET', '/status', evil)).status).toBe(403)
    expect((await call(port, 'GET', '/status', { origin: 'null' })).status).toBe(403)
    const post = await call(port, 'POST', '/tasks', { ...evil, authorization: `Bearer ${token}`, 'content-type': 'text/plain' }, TASK)
    expect(post.status).toBe(403)
    expect(post.json().error).toMatch(/origin "http:\/\/evil\.example" are refused.*--api-allow-origin/)
    // A page on another port of this machine is another origin.
    expect((await call(port, 'GET', '/status', { origin: `http://127.0.0.1:${port + 1}` })).status).toBe(403)
    // <img src> and links send no Origin, but the browser says where they come from.
    expect((await call(port, 'GET', '/tasks/%ZZ', { 'sec-fetch-site': 'cross-site' })).status).toBe(403)
    expect((await call(port, 'GET', '/status', { 'sec-fetch-site': 'same-site' })).status).toBe(403)
    // Its own origin, a typed URL, and clients that are not browsers pass.
    expect((await call(port, 'GET', '/status', { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' })).status).toBe(200)
    expect((await call(port, 'GET', '/status', { 'sec-fetch-site': 'none' })).status).toBe(200)
    expect((await call(port, 'GET', '/status')).status).toBe(200)
  })

  it('an origin allowed with --api-allow-origin gets CORS answers, and still needs the token to POST', async () => {
    const app = 'http://localhost:3000'
    const { port, token } = await api({ allowOrigins: [app] })
    const got = await call(port, 'GET', '/status', { origin: app, 'sec-fetch-site': 'same-site' })
    expect(got.status).toBe(200)
    expect(got.headers['access-control-allow-origin']).toBe(app)
    const preflight = await call(port, 'OPTIONS', '/tasks', { origin: app, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization', 'access-control-request-private-network': 'true' })
    expect(preflight.status).toBe(204)
    expect(preflight.headers).toMatchObject({ 'access-control-allow-origin': app, 'access-control-allow-headers': 'authorization, content-type', 'access-control-allow-private-network': 'true' })
    expect((await call(port, 'POST', '/tasks', { origin: app }, TASK)).status).toBe(401)
    const posted = await call(port, 'POST', '/tasks', { origin: app, authorization: `Bearer ${token}` }, TASK)
    expect(posted.status).toBe(202)
    expect(posted.headers['access-control-allow-origin']).toBe(app)
    expect((await call(port, 'OPTIONS', '/tasks', { origin: 'http://evil.example' })).status).toBe(403)
  })
})

describe('the token', () => {
  it('every POST needs it: 401 naming the token file without it or with a wrong one; GET on loopback does not', async () => {
    const { port, token, tokenPath } = await api()
    for (const path of ['/tasks', '/tasks?wait=1', '/run', '/feedback']) {
      const answer = await call(port, 'POST', path, {}, '{}')
      expect(answer.status, path).toBe(401)
      expect(answer.headers['www-authenticate']).toBe('Bearer realm="agentmesh"')
      expect(answer.json().error).toContain(tokenPath)
    }
    expect((await call(port, 'POST', '/tasks', { authorization: `Bearer ${'0'.repeat(64)}` }, TASK)).status).toBe(401)
    expect((await call(port, 'POST', '/tasks', { authorization: token }, TASK)).status).toBe(401)
    expect((await call(port, 'DELETE', '/status')).status).toBe(401)
    expect((await call(port, 'DELETE', '/status', { authorization: `Bearer ${token}` })).status).toBe(405)
    const accepted = await call(port, 'POST', '/tasks', { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' }, TASK)
    expect(accepted.status).toBe(202)
    const { id } = accepted.json() as { id: string }
    expect((await call(port, 'GET', `/tasks/${id}`)).status).toBe(200)
  })

  it('a YAML body over 128 KiB is refused with 413 (its parser is slow on hostile input); JSON of that size is parsed', async () => {
    const { port, token } = await api()
    const auth = { authorization: `Bearer ${token}` }
    const big = `input: [${'0,'.repeat(70_000)}0]\n`
    const refused = await call(port, 'POST', '/tasks', { ...auth, 'content-type': 'application/yaml' }, big)
    expect(refused.status).toBe(413)
    expect(refused.json().error).toMatch(/YAML body is limited to 128 KiB; send larger tasks as JSON/)
    // The same size as JSON reaches the task parser, which says what is wrong with the task itself.
    const json = await call(port, 'POST', '/tasks', { ...auth, 'content-type': 'application/json' }, JSON.stringify({ input: new Array(70_000).fill(0) }))
    expect(json.status).toBe(400)
    expect(json.json().error).not.toMatch(/YAML/)
  })

  it('lives in the data directory with mode 0600, is reused across restarts, and a loose one is refused', async () => {
    const first = await api()
    expect(first.tokenPath).toBe(join(peer.dataDir, 'api-token'))
    expect(statSync(first.tokenPath).mode & 0o777).toBe(0o600)
    expect(first.token).toMatch(/^[0-9a-f]{64}$/)
    expect(readFileSync(first.tokenPath, 'utf8').trim()).toBe(first.token)
    expect(JSON.parse(readFileSync(join(peer.dataDir, 'api.json'), 'utf8'))).toEqual({ url: `http://127.0.0.1:${first.port}`, port: first.port, pid: process.pid })
    await first.close()
    apis.splice(apis.indexOf(first), 1)
    expect(() => readFileSync(join(peer.dataDir, 'api.json'))).toThrow(/ENOENT/)
    expect((await api()).token).toBe(first.token)

    const dir = tmp('agentmesh-token-')
    const fresh = await api({ dataDir: dir })
    expect(fresh.token).not.toBe(first.token)
    await fresh.close()
    apis.splice(apis.indexOf(fresh), 1)
    chmodSync(join(dir, 'api-token'), 0o644)
    await expect(startApi(peer, { port: 0, dataDir: dir })).rejects.toThrow(PeerStartError)
    await expect(startApi(peer, { port: 0, dataDir: dir })).rejects.toThrow(/readable by other users \(mode 644\) — run chmod 600/)
  })
})

describe('slow and many clients', () => {
  it('a slow body and a silent connection are cut; a ?wait=1 POST still waits for its task', async () => {
    const { port, token } = await api({ limits: { headersTimeoutMs: 200, requestTimeoutMs: 300 } })
    // The body is in; the task waits on the gated agent, longer than the request timeout.
    const waiting = call(port, 'POST', '/tasks?wait=1', { authorization: `Bearer ${token}` }, 'subtasks:\n  - id: w\n    capability: { text: waits until released, skills: [wait] }\n    input: {}\n')
    await gate.whenStarted(1)
    const slowBody = raw(port, `POST /tasks HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nauthorization: Bearer ${token}\r\ncontent-length: 1000\r\n\r\nsubtasks:`)
    const silent = raw(port, '')
    const slowHeaders = raw(port, `GET /status HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n`)
    expect((await slowBody).status).toBe(408)
    expect((await silent).status).toBe(408)
    expect((await slowHeaders).status).toBe(408)
    // Both deadlines have passed for the waiting request too, and it was not cut.
    gate.release()
    const done = await waiting
    expect(done.status).toBe(200)
    expect(done.json()).toMatchObject({ status: 'done', result: { w: { echo: {} } } })
  })

  it('connections beyond the cap are closed at once; the ones held keep working', async () => {
    const { port } = await api({ limits: { maxConnections: 2, keepAliveTimeoutMs: 60_000 } })
    const held = await Promise.all([0, 1].map(async () => await keptAlive(port)))
    const refused = await raw(port, `GET /status HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n\r\n`)
    expect(refused.status).toBe(0)
    expect(refused.body).toBe('')
    for (const h of held) expect((await h.get()).status).toBe(200)
    for (const h of held) h.socket.destroy()
  })
})

/** A kept-alive connection whose first GET /status was answered; `get` sends another. */
async function keptAlive (port: number): Promise<{ socket: Socket, get: () => Promise<Answer> }> {
  const socket = connect(port, '127.0.0.1')
  socket.setEncoding('utf8')
  const get = (): Promise<Answer> => new Promise((resolve, reject) => {
    let data = ''
    const onData = (d: string): void => {
      data += d
      const answer = parse(data)
      if (answer.status !== 0 && Buffer.byteLength(answer.body) >= Number(answer.headers['content-length'])) { socket.off('data', onData); resolve(answer) }
    }
    socket.on('data', onData)
    socket.once('error', reject)
    socket.write(`GET /status HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n\r\n`)
  })
  expect((await get()).status).toBe(200)
  return { socket, get }
}

describe('beyond loopback', () => {
  it('startApi refuses a non-loopback address without TLS', async () => {
    await expect(startApi(peer, { port: 0, host: '0.0.0.0' })).rejects.toThrow(/beyond this machine, in clear text — give --api-tls-cert/)
  })

  it('with TLS it serves HTTPS and wants the token for GET too, whatever the Host', async () => {
    const a = await api({ host: '0.0.0.0', tls: { cert: tls.cert, key: tls.key } })
    expect(a.url).toBe(`https://0.0.0.0:${a.port}`)
    const without = await callTls(a.port, '/status')
    expect(without.status).toBe(401)
    expect(without.json.error).toMatch(/listens beyond loopback, so GET \/status needs the API token.*the api-token file of the peer's data directory/)
    expect(without.json.error).not.toContain(peer.dataDir)
    expect((await callTls(a.port, '/status', { authorization: `Bearer ${'1'.repeat(64)}` })).status).toBe(401)
    const got = await callTls(a.port, '/status', { authorization: `Bearer ${a.token}`, host: 'mesh.example.org' })
    expect(got.status).toBe(200)
    expect(got.json.peerId).toBe(peer.peerId)
    expect((await callTls(a.port, '/status', { authorization: `Bearer ${a.token}`, origin: 'https://evil.example' })).status).toBe(403)
    // The dashboard's own files load without it (a browser opening the link cannot send one);
    // what the page then reads needs it.
    expect((await callTls(a.port, '/ui')).status).toBe(200)
    expect((await callTls(a.port, '/ui/dashboard.js')).status).toBe(200)
    for (const path of ['/events', '/route?text=x', '/metrics', '/ui/../status', '/ui/other.js']) expect((await callTls(a.port, path)).status, path).toBe(401)
  })
})

describe('the command line', () => {
  it('node --api-listen 0.0.0.0:0 without TLS exits 2 before starting; with TLS it serves HTTPS', async () => {
    const home = tmp('agentmesh-apicli-')
    const base = ['node', '--listen', '/ip4/127.0.0.1/tcp/0', '--data', join(home, 'node'), '--json']
    const refused = await cli(home, [...base, '--api-listen', '0.0.0.0:0'])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/agentmesh the API would listen on 0\.0\.0\.0, beyond this machine, in clear text — give --api-tls-cert FILE and --api-tls-key FILE/)
    expect((await cli(home, [...base, '--api-listen', '0.0.0.0:0', '--api-port', '8100'])).stderr).toMatch(/not both/)
    expect((await cli(home, [...base, '--api-listen', 'example.org:80'])).stderr).toMatch(/the host must be an IP address or localhost/)
    expect((await cli(home, [...base, '--api-allow-origin', 'http://x.example/path'])).stderr).toMatch(/is not an origin/)

    const node = spawn(process.execPath, [BIN, ...base, '--api-listen', '0.0.0.0:0', '--api-tls-cert', tls.certFile, '--api-tls-key', tls.keyFile], { env: { ...process.env, AGENTMESH_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] })
    try {
      const ready = await readyLine(node)
      const port = Number(/^https:\/\/0\.0\.0\.0:(\d+)$/.exec(ready.api)?.[1])
      expect(ready.apiToken).toBe(join(home, 'node', 'api-token'))
      expect((await callTls(port, '/status')).status).toBe(401)
      const token = readFileSync(ready.apiToken, 'utf8').trim()
      expect((await callTls(port, '/status', { authorization: `Bearer ${token}` })).json.peerId).toBe(ready.peerId)
    } finally {
      node.kill('SIGTERM')
      await new Promise(resolve => node.once('exit', resolve))
    }
  }, 30_000)

  it('run finds the token of the peer on its port under AGENTMESH_HOME; without it, it says where the token is', async () => {
    const home = tmp('agentmesh-apicli-')
    const node = spawn(process.execPath, [BIN, 'node', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-listen', '127.0.0.1:0', '--json'], { env: { ...process.env, AGENTMESH_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] })
    try {
      const ready = await readyLine(node)
      const port = /:(\d+)$/.exec(ready.api)![1]!
      const args = ['run', 'what is 6 times 7', '--input', '{"expression": "6*7"}', '--api-port', port, '--json']
      const ran = await cli(home, args)
      expect(ran.code, ran.stderr).toBe(0)
      expect(JSON.parse(ran.stdout)).toMatchObject({ status: 'done', result: { run: { value: 42 } } })
      const byData = await cli(tmp('agentmesh-elsewhere-'), ['run', 'what is 6 times 7', '--input', '{"expression": "6*7"}', '--data', join(home, 'node'), '--json'])
      expect(byData.code, byData.stderr).toBe(0)
      const elsewhere = await cli(tmp('agentmesh-elsewhere-'), args)
      expect(elsewhere.code).toBe(2)
      expect(elsewhere.stderr).toContain(`the peer wants its API token: POST /run needs the API token: send Authorization: Bearer <token>, the token being in ${join(home, 'node', 'api-token')}`)
    } finally {
      node.kill('SIGTERM')
      await new Promise(resolve => node.once('exit', resolve))
    }
  }, 30_000)
})

function cli (home: string, args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, AGENTMESH_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    child.once('close', code => { resolve({ code, stdout, stderr }) })
  })
}

/** The `ready` event of a `node --json` process. */
function readyLine (child: ReturnType<typeof spawn>): Promise<{ peerId: string, api: string, apiToken: string }> {
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d })
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d
      for (const line of out.split('\n').slice(0, -1)) { // whole lines only: the last may be cut
        const e = JSON.parse(line) as { event?: string, peerId: string, api: string, apiToken: string }
        if (e.event === 'ready') resolve(e)
      }
    })
    child.once('exit', code => { reject(new Error(`node exited ${code} before ready: ${err}`)) })
  })
}
