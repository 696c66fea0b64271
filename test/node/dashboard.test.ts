// The dashboard at /ui in a real Chromium against real peers over TCP on loopback: a task run from
// the page's form finishes in the page, the agents table and a routing preview show, and a
// certificate is verified by the page itself (and a tampered one fails). Without the browser:
// /events replays after Last-Event-ID, caps its streams, drops a reader that cannot keep up and
// ends when the API closes; /route teaches the bandit nothing; the page's CBOR encoder and
// certificate check agree with the peer's own.
import { describe, it, expect, afterEach } from 'vitest'
import { copyFile, mkdir } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { encodeCanonical } from '../../protocols/cbor.ts'
import { mulberry32 } from '../../protocols/random.ts'
import { createPolicy, type CandidateState } from '../../protocols/routing/index.ts'
import { startApi, type Api } from '../../node/api/api.ts'
import { dashboardUrl, MAX_EVENT_STREAMS, MAX_ROUTE_TEXT } from '../../node/api/ui-routes.ts'
import { createAgent } from '../../node/agents/registry.ts'
import type { Agent } from '../../node/agents/agent.ts'
import type { Peer } from '../../node/peer.ts'
import { usePeers } from '../helpers/peers.ts'
import { until } from '../helpers/until.ts'
// The page's own modules, plain browser JavaScript, run here in Node as well.
// @ts-expect-error plain JavaScript without types
import { decode as pageDecode, encode as pageEncode } from '../../node/api/ui/cbor.js'
// @ts-expect-error plain JavaScript without types
import { verifyCertificate as pageVerify } from '../../node/api/ui/verify.js'

const { peer } = usePeers('agentmesh-dashboard-')
const apis: Api[] = []
let browser: Browser | undefined
afterEach(async () => {
  await browser?.close()
  browser = undefined
  await Promise.all(apis.splice(0).map(async a => { await a.close() }))
})

async function api (p: Peer): Promise<Api> {
  const a = await startApi(p, { port: 0 })
  apis.push(a)
  return a
}

async function fullMesh (peers: Peer[]): Promise<void> {
  await Promise.all(peers.map(async (p, i) => {
    const failures = await p.dial(peers.slice(i + 1).map(q => q.multiaddrs()[0]!))
    if (failures.length > 0) throw new Error(failures.map(f => f.error).join('; '))
  }))
}

/** A raw HTTP/1.1 GET on /events; resolves with the socket once the headers are in. */
async function openStream (port: number, headers: Record<string, string> = {}): Promise<{ head: string, text: () => string, ended: Promise<void>, socket: ReturnType<typeof connect> }> {
  const socket = connect(port, '127.0.0.1')
  let received = ''
  const ended = new Promise<void>(resolve => { socket.on('close', () => resolve()) })
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => { received += chunk })
  socket.on('error', () => {})
  socket.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`)
  await new Promise<void>((resolve, reject) => {
    const check = (): void => { if (received.includes('\r\n\r\n')) { socket.off('data', check); resolve() } }
    socket.on('data', check)
    socket.once('close', () => { reject(new Error(`closed before headers: ${received.slice(0, 200)}`)) })
  })
  return { head: received.slice(0, received.indexOf('\r\n\r\n')), text: () => received, ended, socket }
}

/** A JSON value from a seeded generator: floats of every width, ints, unicode keys, nesting. */
function randomJson (rand: () => number, depth = 0): unknown {
  const r = rand()
  if (depth > 3 || r < 0.35) {
    const numbers = [0.5, 1.5, 0.1, 65504, 65505, 1e-5, 2 ** -20, 2 ** -24, 3 * 2 ** -24, 6.103515625e-5, 3.4e38, 1e300, -2.75, 2 ** 53 + 2, -(2 ** 40), 255, 256, 65536, 2 ** 32, -1, -25, 123.456]
    const pick = Math.floor(rand() * 6)
    if (pick === 0) return numbers[Math.floor(rand() * numbers.length)]
    if (pick === 1) return Math.floor((rand() - 0.5) * 2 ** (rand() * 60))
    if (pick === 2) return (rand() - 0.5) * 10 ** Math.floor(rand() * 12)
    if (pick === 3) return ['', 'a', 'ü€😀', 'x'.repeat(30), 'y'.repeat(300)][Math.floor(rand() * 5)]
    return [null, true, false][Math.floor(rand() * 3)]
  }
  if (r < 0.6) return Array.from({ length: Math.floor(rand() * 5) }, () => randomJson(rand, depth + 1))
  const keys = ['a', 'b', 'aa', 'ab', 'z', 'kind', 'answer', 'é', '10', 'longer key', 'evidence', 'outcome']
  return Object.fromEntries(Array.from({ length: Math.floor(rand() * 6) }, () => [keys[Math.floor(rand() * keys.length)]!, randomJson(rand, depth + 1)]))
}

describe('the page\'s CBOR', () => {
  it('encodes exactly as the peer\'s canonical encoder, and decodes it back', () => {
    const rand = mulberry32(7)
    for (let i = 0; i < 2000; i++) {
      const value = randomJson(rand)
      const ours = pageEncode(value) as Uint8Array
      expect(Buffer.from(ours).toString('hex'), JSON.stringify(value)).toBe(Buffer.from(encodeCanonical(value)).toString('hex'))
      expect(pageDecode(ours)).toEqual(value)
    }
  })
})

describe('a policy\'s preview', () => {
  it('picks as select would and changes nothing: no pending dispatch, no round-robin turn taken', () => {
    const candidates: CandidateState[] = ['h/a', 'h/b', 'h/c'].map((agent, i) => ({ agent, similarity: 0.9 - i / 10, load: 0.1, latencyMs: 20, cost: 0.1, reputation: 0.5, available: true }))
    for (const name of ['linucb', 'round-robin', 'symphony', 'greedy-similarity']) {
      const policy = createPolicy(name)
      const before = JSON.stringify(policy.toJSON())
      const previews = Array.from({ length: 3 }, () => policy.preview(candidates, { taskType: 'calc' }, mulberry32(1)).chosen)
      expect(new Set(previews).size, name).toBe(1)
      expect(JSON.stringify(policy.toJSON()), name).toBe(before)
      expect(policy.select(candidates, { taskType: 'calc' }, mulberry32(1), { id: 'd1', now: 0 }).chosen, name).toBe(previews[0])
      expect(policy.pending, name).toBe(1)
    }
  })
})

describe('the dashboard in Chromium', () => {
  it('runs a task from the form, previews routing, and verifies a certificate in the page (a tampered one fails)', async () => {
    // A hostile description: it must show as text, never become markup.
    const honest = createAgent({ kind: 'arithmetic' })
    const shouty: Agent = { describe: () => ({ ...honest.describe(), name: 'shouty', description: 'adds numbers <img id="injected" src="x"> <b>loud</b>' }), handle: async input => await honest.handle(input) }
    const peers = [
      await peer({ customAgents: [shouty] }),
      ...await Promise.all(Array.from({ length: 3 }, async () => await peer()))
    ]
    await fullMesh(peers)
    await until(() => peers.every(p => p.capability.agents().filter(v => v.body.agent.endsWith('/arithmetic')).length === 4))
    await peers[0]!.whenIndexed()
    const a = await api(peers[0]!)

    const page0 = await fetch(`${a.url}/ui`)
    expect(page0.headers.get('content-type')).toMatch(/^text\/html/)
    expect(page0.headers.get('content-security-policy')).toMatch(/default-src 'self'; script-src 'self'/)
    expect(await page0.text()).not.toMatch(/<script>|\sstyle=|\son[a-z]+=/i)

    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] })
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
    const pageErrors: string[] = []
    page.on('pageerror', err => { pageErrors.push(err.message) })
    page.on('console', m => { if (m.type() === 'error') pageErrors.push(m.text()) })
    await page.goto(dashboardUrl(a.url, a.token))
    // The token left the address bar and lives in this tab only.
    await page.waitForFunction('location.hash === ""')
    expect(await page.evaluate(() => sessionStorage.getItem('agentmesh-api-token'))).toBe(a.token)
    await page.waitForSelector('#live.on')

    // Agents: every arithmetic agent, and the hostile description as text.
    await page.waitForFunction('document.querySelectorAll(\'[data-agent$="/arithmetic"]\').length === 4')
    const shoutyRow = page.locator(`[data-agent="${peers[0]!.peerId}/shouty"]`)
    await expect.poll(async () => await shoutyRow.textContent()).toContain('<img id="injected" src="x"> <b>loud</b>')
    expect(await page.locator('#injected').count()).toBe(0)

    // Routing preview: candidates, scores and the pick, with the bandit unchanged.
    const bandit = JSON.stringify(peers[0]!.router.policy.toJSON())
    await page.fill('#route-text', 'calculate 6 * 7')
    await page.fill('#route-skills', 'arithmetic')
    await page.click('#route-form button')
    await page.waitForSelector('.route-choice')
    expect(await page.textContent('.route-choice')).toMatch(/would pick .*\/(arithmetic|shouty) — linucb/)
    expect(await page.locator('.route-table tbody tr').count()).toBeGreaterThanOrEqual(4)
    expect(await page.locator('.route-table tr.chosen').count()).toBe(1)
    expect(JSON.stringify(peers[0]!.router.policy.toJSON())).toBe(bandit)

    // A one-line run through the form (POST /run with the token from the fragment).
    await page.fill('#run-text', 'calculate an arithmetic expression')
    await page.fill('#run-skills', 'arithmetic')
    await page.fill('#run-input', '{"expression": "17 * 23"}')
    await page.click('#run-form button')
    await page.waitForSelector('#run-result .run-report')
    expect(await page.textContent('#run-result')).toMatch(/done[\s\S]*391/)
    // …and live, from /events: its DAG node with the route's candidates and choice, then done.
    await page.waitForSelector('#task-list .task .task-status.done')
    const card = page.locator('#task-list .task').first()
    await page.locator('#task-list .task .task-result', { hasText: '391' }).waitFor()
    expect(await card.locator('.subtask[data-subtask="run"] .choice').textContent()).toMatch(/linucb chose/)
    expect(await card.locator('.subtask[data-subtask="run"] tr.chosen').count()).toBe(1)

    // A trusted task, submitted by the test with the token: the page verifies its certificate.
    const submitted = await fetch(`${a.url}/tasks?wait=1`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'trusted-dash', subtasks: [{ id: 'total', capability: { text: 'calculate an arithmetic expression', skills: ['arithmetic'] }, input: { expression: '17 * 23 + 1' }, trust: true }] })
    })
    const report = await submitted.json() as { status: string, reason?: string, trace: Array<{ kind: string, detail?: { certificate?: string } }> }
    expect(report.status, report.reason).toBe('done')
    const instance = report.trace.find(t => t.kind === 'agree')!.detail!.certificate!
    const verdict = page.locator(`[data-certificate="${instance}"] .verdict`)
    await verdict.waitFor()
    expect(await verdict.textContent()).toBe('verified')
    expect(await page.textContent(`[data-certificate="${instance}"]`)).toMatch(/answer \{"value":392\}[\s\S]*Ed25519 signatures checked in this page; precommits carry \d+ of \d+ voting power/)
    // The trusted task's DAG node shows the committee's agreement.
    await page.locator('[data-task="trusted-dash"] .agreement', { hasText: 'committee agreed' }).waitFor()
    // Reputation: the three executors of the trusted subtask, each with an agreement counted.
    await page.locator('#reputation-table tbody tr').nth(2).waitFor()

    const shot = join(tmpdir(), 'agentmesh-dashboard.png')
    await page.screenshot({ path: shot, fullPage: true })
    await mkdir(new URL('../artifacts/', import.meta.url), { recursive: true })
    await copyFile(shot, new URL('../artifacts/dashboard.png', import.meta.url))
    expect(pageErrors).toEqual([])

    // The page's checker, run in Node on the served certificate and on tampered copies.
    const served = await (await fetch(`${a.url}/certificates/${instance}`)).json() as Record<string, unknown> & { evidence: string[], precommits: string[], outcome: { answer: { value: number } } }
    expect(await pageVerify(served)).toMatchObject({ ok: true, instance, problems: [] })
    const flip = (b64: string, at: number): string => { const b = Buffer.from(b64, 'base64url'); b[b.length - at]! ^= 1; return b.toString('base64url') }
    const forged = { ...served, outcome: { ...served.outcome, answer: { value: 391 } } }
    expect((await pageVerify(forged)).problems.join('\n')).toMatch(/not for the committed value[\s\S]*more than 2\/3/)
    expect((await pageVerify({ ...served, statement: flip(served.statement as string, 1) })).problems.join('\n')).toMatch(/committee statement: bad signature/)
    expect((await pageVerify({ ...served, evidence: [flip(served.evidence[0]!, 1), ...served.evidence.slice(1)] })).problems.join('\n')).toMatch(/evidence 0: bad signature/)
    expect((await pageVerify({ ...served, precommits: served.precommits.slice(0, 1) })).problems.join('\n')).toMatch(/precommits carry \d+ of \d+ voting power/)

    // The same certificate with its outcome changed, served to a fresh page: it shows failed.
    const tampered = await browser.newPage()
    await tampered.route(`**/certificates/${instance}`, async route => { await route.fulfill({ json: forged }) })
    await tampered.goto(dashboardUrl(a.url, a.token))
    const bad = tampered.locator(`[data-certificate="${instance}"] .verdict`)
    await bad.waitFor()
    expect(await bad.textContent()).toBe('failed')
    expect(await tampered.textContent(`[data-certificate="${instance}"] .problems`)).toMatch(/not for the committed value/)
  }, 120_000)
})

describe('/events and /route without a browser', () => {
  it('/events replays after Last-Event-ID, refuses the 17th stream with 503, drops a reader that cannot keep up, and ends when the API closes', async () => {
    const p = await peer({ agents: [] })
    const a = await api(p)
    for (let i = 0; i < 5; i++) p.activity.emit({ type: 'peer-refused', peer: `p${i}`, reason: `test ${i}` })
    const since = p.activity.seq - 2
    const replay = await openStream(a.port, { 'Last-Event-ID': String(since) })
    expect(replay.head).toMatch(/^HTTP\/1.1 200[\s\S]*content-type: text\/event-stream/i)
    expect(replay.head).toMatch(/content-security-policy: default-src 'self'/i)
    await until(() => replay.text().includes(`id: ${since + 2}\n`))
    expect(replay.text()).not.toContain(`id: ${since}\n`)
    expect(replay.text()).toContain(`id: ${since + 1}\ndata: {"type":"peer-refused","peer":"p3"`)
    // Live events follow on the same stream.
    p.activity.emit({ type: 'agent-removed', agent: 'x/y', reason: 'live one' })
    await until(() => replay.text().includes('"reason":"live one"'))

    const streams = [replay]
    for (let i = 1; i < MAX_EVENT_STREAMS; i++) streams.push(await openStream(a.port))
    const refused = await fetch(`${a.url}/events`)
    expect(refused.status).toBe(503)
    expect((await refused.json() as { error: string }).error).toMatch(/16 event streams are open already/)

    // One reader stops reading; large events pile up behind it until it is dropped.
    const slow = streams.pop()!
    slow.socket.pause()
    const big = 'x'.repeat(64 * 1024)
    for (let i = 0; i < 200 && !slow.socket.destroyed; i++) {
      p.activity.emit({ type: 'gossip-rejected', from: undefined, reason: big })
      // Lets the kernel buffers fill and the server notice between bursts.
      if (i % 20 === 19) await new Promise(resolve => setImmediate(resolve))
    }
    slow.socket.resume()
    await slow.ended
    expect(slow.text().length).toBeLessThan(200 * big.length)
    // Its slot is free again; a newcomer gets the newest events that fit, and is told what it missed.
    const late = await openStream(a.port, { 'Last-Event-ID': '1' })
    await until(() => late.text().includes(`id: ${p.activity.seq}\n`))
    expect(late.text()).toMatch(/event: gap\ndata: \{"missedFrom":2,"missedTo":\d+\}/)
    streams.push(late)

    // Closing the API ends every stream, and the peer still stops.
    apis.splice(apis.indexOf(a), 1)
    await a.close()
    await Promise.all(streams.map(async s => { await s.ended }))
  }, 60_000)

  it('/route answers what routing would pick, and why, without teaching the bandit; bad input is refused', async () => {
    const [p, q] = [await peer(), await peer()]
    await fullMesh([p, q])
    await until(() => p.capability.agents().filter(v => v.body.agent.endsWith('/arithmetic')).length === 2)
    await p.whenIndexed()
    const a = await api(p)
    // Teach the bandit something first, so "unchanged" is not the empty model.
    const run = await fetch(`${a.url}/run`, { method: 'POST', headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ text: 'calculate an arithmetic expression', skills: ['arithmetic'], input: { expression: '2 + 2' } }) })
    expect((await run.json() as { status: string }).status).toBe('done')
    const before = JSON.stringify(p.router.policy.toJSON())
    const pending = p.router.policy.pending
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${a.url}/route?text=${encodeURIComponent('calculate 17 * 23')}&skills=arithmetic`)
      expect(res.status).toBe(200)
      const body = await res.json() as { candidates: Array<{ agent: string }>, explanation: { chosen: string, policy: string, screened: Array<{ agent: string, similarity: number }>, scores: Array<{ agent: string, score: number }> } }
      expect(body.explanation.policy).toBe('linucb')
      expect(body.candidates[0]!.agent).toBe(body.explanation.chosen)
      expect(body.explanation.screened.map(s => s.agent).sort()).toEqual([`${p.peerId}/arithmetic`, `${q.peerId}/arithmetic`].sort())
      const best = Math.max(...body.explanation.scores.map(s => s.score))
      expect(body.explanation.scores.find(s => s.agent === body.explanation.chosen)!.score).toBe(best)
    }
    const skillsOnly = await (await fetch(`${a.url}/route?skills=arithmetic`)).json() as { candidates: unknown[] }
    expect(skillsOnly.candidates).toHaveLength(2)
    expect(JSON.stringify(p.router.policy.toJSON())).toBe(before)
    expect(p.router.policy.pending).toBe(pending)

    const refusal = async (query: string): Promise<string> => {
      const res = await fetch(`${a.url}/route?${query}`)
      expect(res.status).toBe(400)
      return (await res.json() as { error: string }).error
    }
    expect(await refusal(`text=${'a'.repeat(MAX_ROUTE_TEXT + 1)}`)).toMatch(/text is limited to 500/)
    expect(await refusal('skills=a,%3Cb%3E')).toMatch(/skill "<b>" is not a word/)
    expect(await refusal('')).toMatch(/give text=/)
  }, 60_000)
})
