// End-to-end tests of the `agentmesh` command line: real processes, real ports on 127.0.0.1.
// Each test has its own AGENTMESH_HOME and its own ports in 27000-29999 (P..P+N-1 for p2p,
// P+1000.. for the API), so the file can run alongside other test files.
import { describe, it, expect, afterEach } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { agentKinds, demoKinds } from '../../node/agents/registry.ts'
import type { VcvJson } from '../../node/api/present.ts'

const BIN = fileURLToPath(new URL('../../bin/agentmesh.js', import.meta.url))
const WAIT_MS = 20_000

interface Exit { code: number | null, signal: NodeJS.Signals | null }

interface Proc {
  child: ChildProcess
  pid: number
  home: string
  stdout: string
  stderr: string
  exited: Exit | undefined
  exit: Promise<Exit>
  /** Resolves with the first non-undefined value of `probe`, re-checked on every output and on exit. */
  waitFor: <T>(what: string, probe: () => T | undefined, timeoutMs?: number) => Promise<T>
}

const started = new Set<Proc>()
const homes: string[] = []
const servers: Server[] = []

function newHome (): string {
  const home = mkdtempSync(join(tmpdir(), 'agentmesh-cli-'))
  homes.push(home)
  return home
}

/** Starts `agentmesh ARGS` in its own process group (so a group signal reaches its peers, like Ctrl-C). */
function start (home: string, args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, AGENTMESH_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true
  })
  const listeners = new Set<() => void>()
  const notify = (): void => { for (const l of [...listeners]) l() }
  const proc: Proc = {
    child,
    pid: child.pid!,
    home,
    stdout: '',
    stderr: '',
    exited: undefined,
    exit: new Promise(resolve => {
      child.once('close', (code, signal) => { proc.exited = { code, signal }; resolve(proc.exited); notify() })
    }),
    waitFor: (what, probe, timeoutMs = WAIT_MS) => new Promise((resolve, reject) => {
      const check = (): void => {
        let value
        try { value = probe() } catch (err) { done(); reject(err); return }
        if (value !== undefined) { done(); resolve(value); return }
        if (proc.exited !== undefined) { done(); reject(new Error(`agentmesh ${args.join(' ')} exited (${JSON.stringify(proc.exited)}) before ${what}\n${transcript(proc)}`)) }
      }
      const timer = setTimeout(() => { done(); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${transcript(proc)}`)) }, timeoutMs)
      const done = (): void => { clearTimeout(timer); listeners.delete(check) }
      listeners.add(check)
      check()
    })
  }
  expect(proc.pid).toBeTypeOf('number')
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { proc.stdout += d; notify() })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { proc.stderr += d; notify() })
  started.add(proc)
  return proc
}

function transcript (p: Proc): string {
  return `--- stdout ---\n${p.stdout}\n--- stderr ---\n${p.stderr}`
}

/** Runs `agentmesh ARGS` to completion. */
async function run (home: string, args: string[], timeoutMs = WAIT_MS): Promise<Proc & { exited: Exit }> {
  const p = start(home, args)
  await p.waitFor('exit', () => p.exited, timeoutMs)
  return p as Proc & { exited: Exit }
}

function lines (text: string): string[] {
  return text.split('\n').filter(l => l.trim() !== '')
}

/** The first JSON line of stdout that satisfies `test`. */
function jsonLine<T = Record<string, unknown>> (p: Proc, test: (o: Record<string, unknown>) => boolean): T | undefined {
  for (const line of lines(p.stdout)) {
    if (!line.startsWith('{')) continue
    let o: Record<string, unknown>
    try { o = JSON.parse(line) as Record<string, unknown> } catch { continue } // a line still being written
    if (test(o)) return o as T
  }
  return undefined
}

/** Live processes (zombies have an empty command line) whose arguments satisfy `match`. */
function processes (match: (args: string[]) => boolean): Array<{ pid: number, args: string }> {
  const out: Array<{ pid: number, args: string }> = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    let args: string[]
    try { args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(a => a !== '') } catch { continue }
    if (args.length > 0 && match(args)) out.push({ pid: Number(entry), args: args.join(' ') })
  }
  return out
}

/** Processes that belong to a test: its AGENTMESH_HOME is in their arguments, or they listen with `--port P`. */
function leftovers (home: string, ports: number[] = []): Array<{ pid: number, args: string }> {
  return processes(args => args.some(a => a.includes(home)) ||
    args.some((a, i) => a === '--port' && ports.includes(Number(args[i + 1]))))
}

function childPids (pid: number): number[] {
  const pids: number[] = []
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      pids.push(...readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(s => s !== '').map(Number))
    } catch {}
  }
  return pids
}

function isAlive (pid: number, home: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(home)
  } catch {
    return false
  }
}

/** Holds 127.0.0.1:PORT until the test ends. */
async function holdPort (port: number): Promise<Server> {
  const server = createServer(socket => socket.destroy())
  servers.push(server)
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', resolve) })
  return server
}

/** A port on 127.0.0.1 that nothing listens on (checked, not assumed). */
async function closedPort (port: number): Promise<number> {
  const server = await holdPort(port)
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

/** What every failed command must look like: the exit code, no stack trace, nothing left running. */
function expectCleanFailure (p: Proc & { exited: Exit }, code: number, home: string, ports: number[] = []): void {
  expect(p.exited, transcript(p)).toEqual({ code, signal: null })
  expect(p.stderr).not.toMatch(/^\s+at /m)
  expect(leftovers(home, ports)).toEqual([])
}

afterEach(async () => {
  for (const p of started) {
    if (p.exited === undefined) {
      try { process.kill(-p.pid, 'SIGKILL') } catch {}
      await Promise.race([p.exit, new Promise(resolve => setTimeout(resolve, 5000).unref())])
    }
  }
  started.clear()
  for (const home of homes.splice(0)) {
    for (const { pid } of leftovers(home)) try { process.kill(pid, 'SIGKILL') } catch {}
    rmSync(home, { recursive: true, force: true })
  }
  await Promise.all(servers.splice(0).map(s => new Promise(resolve => s.close(resolve))))
})

describe('agentmesh up', () => {
  it('--until-converged --json: 3 peers agree on all 18 agents, exit 0, and leave no process', async () => {
    const B = 27000
    const home = newHome()
    const t0 = performance.now()
    const p = await run(home, ['up', '--peers', '3', '--until-converged', '--json', '--base-port', String(B)])
    const wallMs = performance.now() - t0
    expect(p.exited, transcript(p)).toEqual({ code: 0, signal: null })
    expect(lines(p.stdout)).toHaveLength(1)
    const result = JSON.parse(p.stdout) as { peers: number, agents: number, converged: boolean, convergedMs: unknown, perPeer: Array<{ peer: number, peerId: string, known: number }> }
    expect(result).toMatchObject({ peers: 3, agents: 18, converged: true })
    expect(result.convergedMs).toBeTypeOf('number')
    expect(result.convergedMs as number).toBeGreaterThanOrEqual(0)
    expect(result.perPeer.map(x => x.peer)).toEqual([0, 1, 2])
    expect(result.perPeer.map(x => x.known)).toEqual([18, 18, 18])
    expect(new Set(result.perPeer.map(x => x.peerId)).size).toBe(3)
    for (const x of result.perPeer) expect(x.peerId).toMatch(/^12D3KooW\w+$/)
    expect(leftovers(home, [B, B + 1, B + 2])).toEqual([])
    console.log(`up --peers 3 --until-converged: ${Math.round(wallMs)} ms wall, converged in ${String(result.convergedMs)} ms`)
  }, 60_000)

  it('--per-process 3: 5 peers in 2 processes agree on all 30 agents, report memory, and leave no process', async () => {
    const B = 27050
    const home = newHome()
    const p = await run(home, ['up', '--peers', '5', '--per-process', '3', '--until-converged', '--json', '--base-port', String(B)])
    expect(p.exited, transcript(p)).toEqual({ code: 0, signal: null })
    const result = JSON.parse(p.stdout) as { converged: boolean, processes: number, perProcess: number, memory: { totalMiB: number, perPeerMiB: number, perProcessMiB: number[] }, perPeer: Array<{ peer: number, peerId: string, known: number }> }
    expect(result).toMatchObject({ converged: true, processes: 2, perProcess: 3 })
    expect(result.perPeer.map(x => x.known)).toEqual([30, 30, 30, 30, 30])
    expect(new Set(result.perPeer.map(x => x.peerId)).size).toBe(5)
    // Each process reports its own resident memory; the per-peer figure divides their sum.
    expect(result.memory.perProcessMiB).toHaveLength(2)
    for (const mib of result.memory.perProcessMiB) expect(mib).toBeGreaterThan(20)
    expect(Math.abs(result.memory.perPeerMiB - result.memory.perProcessMiB.reduce((a, b) => a + b, 0) / 5)).toBeLessThanOrEqual(1)
    expect(leftovers(home, [0, 1, 2, 3, 4].map(i => B + i))).toEqual([])
  }, 60_000)

  it('interactive: shows the converged table, answers `agents`, and Ctrl-C stops every peer', async () => {
    const B = 27100
    const home = newHome()
    const up = start(home, ['up', '--peers', '2', '--base-port', String(B)])
    await up.waitFor('"the mesh is running"', () => /the mesh is running/.exec(up.stdout) ?? undefined)
    expect(up.stdout).toMatch(/^started 2 peers in 2 processes in \d+ ms$/m)
    expect(up.stdout).toMatch(/^converged in \d+ ms: every peer knows all 12 agents \(memory: \d+ MiB in 2 processes, \d+ MiB per peer\)$/m)

    // The peer table: full ids, p2p addresses and API ports P+1000+i.
    const peerRows = [...up.stdout.matchAll(/^(\d+)\s+(12D3KooW\w+)\s+(\/ip4\/127\.0\.0\.1\/tcp\/(\d+)\/p2p\/\w+)\s+127\.0\.0\.1:(\d+)$/gm)]
    expect(peerRows.map(m => [Number(m[1]), Number(m[4]), Number(m[5])])).toEqual([[0, B, B + 1000], [1, B + 1, B + 1001]])
    const peerIds = peerRows.map(m => m[2]!)

    // The agents table: every demo agent twice (one per host), each seen by both peers.
    const table = up.stdout.slice(up.stdout.indexOf('converged in'))
    expect(table).toMatch(/^AGENT\s+HOST\s+VER\s+SKILLS\s+COST\s+LATENCY\s+CAP\s+EXPIRES\s+SEEN BY$/m)
    for (const name of demoKinds) {
      const rows = table.split('\n').filter(l => l.startsWith(`${name} `))
      expect(rows, name).toHaveLength(2)
      for (const row of rows) expect(row).toMatch(/\s2\/2$/)
    }

    const children = childPids(up.pid)
    expect(children).toHaveLength(2)
    for (const pid of children) expect(isAlive(pid, home)).toBe(true)
    // The leftover check below sees exactly these peers while they run.
    expect(leftovers(home, [B, B + 1]).map(p => p.pid).sort()).toEqual([...children].sort())

    // While it runs, another process asks peer 0's API.
    const json = await run(home, ['agents', '--api-port', String(B + 1000), '--json'])
    expect(json.exited, transcript(json)).toEqual({ code: 0, signal: null })
    const agents = JSON.parse(json.stdout) as VcvJson[]
    expect(agents).toHaveLength(12)
    const now = Date.now()
    for (const a of agents) {
      expect(a).toMatchObject({
        agent: `${a.host}/${a.name}`,
        version: expect.any(Number),
        description: expect.any(String),
        skills: expect.arrayContaining([expect.any(String)]),
        inputSchema: expect.objectContaining({ type: 'object' }),
        outputSchema: expect.objectContaining({ type: 'object' }),
        schemaHash: expect.stringMatching(/^[0-9a-f]{64}$/),
        cost: expect.any(Number),
        latencyMs: expect.any(Number),
        capacity: expect.any(Number),
        policy: expect.any(Array),
        issuedAt: expect.any(Number),
        expiresAt: expect.any(Number)
      })
      expect(a.version).toBeGreaterThanOrEqual(1)
      expect(a.expiresAt).toBeGreaterThan(now)
    }
    for (const host of peerIds) {
      expect(agents.filter(a => a.host === host).map(a => a.name).sort(), host).toEqual([...demoKinds].sort())
    }

    const text = await run(home, ['agents', '--api-port', String(B + 1000)])
    expect(text.exited, transcript(text)).toEqual({ code: 0, signal: null })
    expect(text.stdout).toMatch(new RegExp(`^12 agents known to the peer at 127\\.0\\.0\\.1:${B + 1000}$`, 'm'))
    expect(lines(text.stdout).filter(l => demoKinds.some(k => l.startsWith(`${k} `)))).toHaveLength(12)

    // A POST needs the API token: `run` finds peer 1's in $AGENTMESH_HOME/up/peer-1 by its API port.
    const ran = await run(home, ['run', 'what is 6 times 7', '--input', '{"expression": "6*7"}', '--api-port', String(B + 1001), '--json'])
    expect(ran.exited, transcript(ran)).toEqual({ code: 0, signal: null })
    expect(JSON.parse(ran.stdout)).toMatchObject({ status: 'done', result: { run: { value: 42 } } })

    // Ctrl-C: the terminal signals the whole process group.
    const t0 = performance.now()
    process.kill(-up.pid, 'SIGINT')
    const exit = await up.waitFor('exit after SIGINT', () => up.exited)
    const stopMs = performance.now() - t0
    expect(exit, transcript(up)).toEqual({ code: 0, signal: null })
    expect(up.stdout).toMatch(/stopping 2 peers… stopped\n$/)
    expect(up.stdout).not.toMatch(/peer \d exited/) // the peers stopped because they were told to, not on their own
    for (const pid of children) expect(isAlive(pid, home), `peer process ${pid}`).toBe(false)
    expect(leftovers(home, [B, B + 1])).toEqual([])
    console.log(`up --peers 2: Ctrl-C to exit ${Math.round(stopMs)} ms`)
  }, 60_000)
})

describe('agentmesh node', () => {
  it('starts, is joined by a second node over --bootstrap, keeps its identity across restarts, stops on Ctrl-C', async () => {
    const B = 27200
    const home = newHome()
    type Ready = { event: 'ready', peerId: string, multiaddrs: string[], api: string, agents: string[] }
    const isReady = (o: Record<string, unknown>): boolean => o['event'] === 'ready'

    const a = start(home, ['node', '--port', String(B), '--api-port', String(B + 1000), '--json'])
    const readyA = await a.waitFor('node A ready', () => jsonLine<Ready>(a, isReady))
    expect(readyA.peerId).toMatch(/^12D3KooW\w+$/)
    expect(readyA.multiaddrs).toContain(`/ip4/127.0.0.1/tcp/${B}/p2p/${readyA.peerId}`)
    expect(readyA.api).toBe(`http://127.0.0.1:${B + 1000}`)
    expect([...readyA.agents].sort()).toEqual([...demoKinds].sort())

    const b = start(home, ['node', '--port', String(B + 1), '--api-port', String(B + 1001), '--data', join(home, 'b'),
      '--bootstrap', readyA.multiaddrs[0]!, '--json'])
    const readyB = await b.waitFor('node B ready', () => jsonLine<Ready>(b, isReady))
    expect(readyB.peerId).not.toBe(readyA.peerId)
    // Each learns the other's agents over gossip.
    const learned = await b.waitFor('node B to learn an agent of A', () =>
      jsonLine<{ agent: string, version: number }>(b, o => o['event'] === 'agent-added' && String(o['agent']).startsWith(`${readyA.peerId}/`)))
    expect(demoKinds).toContain(learned.agent.slice(readyA.peerId.length + 1))
    expect(learned.version).toBeGreaterThanOrEqual(1)
    await a.waitFor('node A to learn an agent of B', () =>
      jsonLine(a, o => o['event'] === 'agent-added' && String(o['agent']).startsWith(`${readyB.peerId}/`)))

    expect(leftovers(home, [B, B + 1]).map(p => p.pid).sort()).toEqual([a.pid, b.pid].sort())
    for (const p of [a, b]) process.kill(-p.pid, 'SIGINT')
    for (const p of [a, b]) expect(await p.waitFor('exit after SIGINT', () => p.exited), transcript(p)).toEqual({ code: 0, signal: null })
    expect(a.stderr + b.stderr).toBe('')
    expect(leftovers(home, [B, B + 1])).toEqual([])

    // Same AGENTMESH_HOME (default --data): same identity, same port free again.
    const again = start(home, ['node', '--port', String(B), '--api-port', String(B + 1000), '--json'])
    const readyAgain = await again.waitFor('node A ready again', () => jsonLine<Ready>(again, isReady))
    expect(readyAgain.peerId).toBe(readyA.peerId)
    process.kill(-again.pid, 'SIGINT')
    expect(await again.waitFor('exit after SIGINT', () => again.exited)).toEqual({ code: 0, signal: null })

    // The same --data under another AGENTMESH_HOME is the same identity too.
    const bAgain = start(newHome(), ['node', '--port', String(B + 1), '--api-port', String(B + 1001), '--data', join(home, 'b'), '--json'])
    expect((await bAgain.waitFor('node B ready again', () => jsonLine<Ready>(bAgain, isReady))).peerId).toBe(readyB.peerId)
    process.kill(-bAgain.pid, 'SIGINT')
    expect(await bAgain.waitFor('exit after SIGINT', () => bAgain.exited)).toEqual({ code: 0, signal: null })
    expect(leftovers(home, [B, B + 1])).toEqual([])
  }, 60_000)
})

describe('bad input: exit code, a message that says what is wrong and what to do, no process left', () => {
  it('up --agents with a missing file names the path', async () => {
    const home = newHome()
    const p = await run(home, ['up', '--peers', '2', '--agents', '/nonexistent.yaml', '--base-port', '27300'])
    expectCleanFailure(p, 2, home, [27300, 27301])
    expect(p.stderr).toContain('cannot read agents file /nonexistent.yaml')
    expect(p.stderr).toMatch(/check the path/)
  })

  it('an agents file with an unknown kind lists the known kinds', async () => {
    const home = newHome()
    const file = join(home, 'agents.yaml')
    writeFileSync(file, 'agents:\n  - kind: arithmetic\n  - kind: calculator\n')
    const p = await run(home, ['up', '--peers', '2', '--agents', file, '--base-port', '27310'])
    expectCleanFailure(p, 2, home, [27310, 27311])
    expect(p.stderr).toContain(`${file}: agents[1]: unknown kind string "calculator" — use one of ${agentKinds.join(', ')}`)
  })

  it('up --peers outside 1-200 says the range', async () => {
    const home = newHome()
    for (const value of ['0', 'abc', '201']) {
      const p = await run(home, ['up', '--peers', value, '--base-port', '27320'])
      expectCleanFailure(p, 2, home, [27320, 27321])
      expect(p.stderr).toContain(`--peers must be a whole number from 1 to 200, not "${value}"`)
    }
  })

  it('a misspelt option suggests the right one', async () => {
    const home = newHome()
    const p = await run(home, ['up', '--peer', '3', '--base-port', '27330'])
    expectCleanFailure(p, 2, home, [27330, 27331, 27332])
    expect(p.stderr).toContain('unknown option --peer — did you mean --peers?')
    expect(p.stderr).toContain('agentmesh help up')
  })

  it('an unknown command shows the usage, and a near miss is corrected', async () => {
    const home = newHome()
    const p = await run(home, ['frobnicate'])
    expectCleanFailure(p, 2, home)
    expect(p.stderr).toContain('unknown command "frobnicate"')
    expect(p.stderr).toMatch(/agentmesh up --peers N/)
    expect(p.stderr).toMatch(/agentmesh help COMMAND/)
    const near = await run(home, ['nodes'])
    expectCleanFailure(near, 2, home)
    expect(near.stderr).toContain('unknown command "nodes" — did you mean "node"?')
  })

  it('a taken port: up names it and --base-port, node says it is in use', async () => {
    const B = 27340
    const home = newHome()
    await holdPort(B)
    const up = await run(home, ['up', '--peers', '2', '--base-port', String(B)])
    expectCleanFailure(up, 2, home, [B, B + 1])
    expect(up.stderr).toContain(`port ${B} on 127.0.0.1 is in use`)
    expect(up.stderr).toContain('--base-port')

    const node = await run(home, ['node', '--port', String(B)])
    expectCleanFailure(node, 2, home, [B])
    expect(node.stderr).toContain(`cannot listen on /ip4/127.0.0.1/tcp/${B}: the port is already in use`)
    expect(node.stderr).toMatch(/choose another port/)
    expect(node.stdout).toBe('')
  })

  it('a taken API port: node says so and names --api-port', async () => {
    const B = 27350
    const home = newHome()
    await holdPort(B + 1000)
    const node = await run(home, ['node', '--port', String(B)])
    expectCleanFailure(node, 2, home, [B])
    expect(node.stderr).toContain(`API port ${B + 1000} is already in use — choose another with --api-port`)
    expect(node.stdout).toBe('')
  })

  it('an unreachable bootstrap peer: exit 1, says so, and the peer is gone', async () => {
    const B = 27360
    const home = newHome()
    const closed = await closedPort(B + 1)
    const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const addr = `/ip4/127.0.0.1/tcp/${closed}/p2p/${id}`
    const p = await run(home, ['node', '--port', String(B), '--bootstrap', addr, '--json'])
    expectCleanFailure(p, 1, home, [B])
    expect(p.stderr).toContain(`bootstrap ${addr}: connection refused`)
    expect(p.stderr).toContain('could not reach any bootstrap peer')
    expect(p.stderr).toMatch(/Check the addresses, or start without --bootstrap/)
    expect(jsonLine(p, o => o['event'] === 'ready')).toBeUndefined()
  })

  it('agents with no peer on the API port says so and how to start one', async () => {
    const home = newHome()
    const port = await closedPort(28370)
    const p = await run(home, ['agents', '--api-port', String(port)])
    expectCleanFailure(p, 2, home)
    expect(p.stderr).toContain(`no agentmesh peer answered at http://127.0.0.1:${port}/agents`)
    expect(p.stderr).toMatch(/start one with `npm start` or `agentmesh node`/)
    expect(p.stdout).toBe('')
  })

  it('node --config with an unknown setting names it', async () => {
    const B = 27380
    const home = newHome()
    const file = join(home, 'node.yaml')
    writeFileSync(file, `port: ${B}\nbootstrapp: []\n`)
    const p = await run(home, ['node', '--config', file])
    expectCleanFailure(p, 2, home, [B])
    expect(p.stderr).toContain(`${file}: unknown setting "bootstrapp" (did you mean "bootstrap"?)`)
    expect(p.stderr).toContain('allowed: port, listen, apiPort, data, bootstrap, ttlSeconds, agents')
  })
})
