// A real mosquitto broker for tests: its own config on a free loopback port, started and stopped
// per test file. Run as root, mosquitto drops privileges to user `mosquitto`, so the config
// directory and files must be readable by others. `.ci/run` installs Debian's mosquitto.
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports.ts'

export interface Broker {
  url: string
  port: number
  /** SIGTERM by default; SIGKILL is a crash (no last wills are sent). */
  stop: (signal?: NodeJS.Signals) => Promise<void>
}

export function hasMosquitto (): boolean {
  return spawnSync('mosquitto', ['-h'], { stdio: 'ignore' }).error === undefined
}

/** Extra lines for mosquitto.conf (ACLs, password files: written beside it, readable by mosquitto). */
export async function startMosquitto (extraConfig: string[] = [], port?: number): Promise<Broker> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(port ?? await freePort(), extraConfig)
    } catch (err) {
      // Another process may take the free port before mosquitto binds it.
      if (attempt >= 5 || !/Address already in use/.test((err as Error).message)) throw err
      // A fixed port (a restart) frees itself shortly after the last broker on it exits.
      if (port !== undefined) await new Promise(resolve => setTimeout(resolve, 200 * attempt))
    }
  }
}

async function startOnce (port: number, extraConfig: string[]): Promise<Broker> {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-mosquitto-'))
  chmodSync(dir, 0o755)
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'persistence false', 'set_tcp_nodelay true', 'log_dest stderr', 'log_type error', 'log_type warning', ...(extraConfig.some(l => l.startsWith('allow_anonymous')) ? [] : ['allow_anonymous true']), ...extraConfig, ''].join('\n'), { mode: 0o644 })
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-4000) })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  // mosquitto buffers its log when stderr is not a terminal, so readiness is the port accepting.
  let gone: Error | undefined
  child.once('exit', code => { gone = new Error(`mosquitto exited (${code}) while starting: ${log.trim()}`) })
  child.once('error', err => { gone = err })
  for (let waited = 0; ; waited += 20) {
    if (gone !== undefined) { rmSync(dir, { recursive: true, force: true }); throw gone }
    if (await accepts(port)) break
    if (waited > 10_000) { child.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); throw new Error(`mosquitto did not open port ${port} within 10 s: ${log.trim()}`) }
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

async function accepts (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}


/**
 * A broker that lets in only `users` (name → password), with the ACL users are told to run
 * (examples/mosquitto/agentmesh.acl): each client publishes and reads under its own name only.
 */
export async function startSecuredMosquitto (users: Record<string, string>, port?: number): Promise<Broker> {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-mosquitto-auth-'))
  chmodSync(dir, 0o755)
  const passwords = join(dir, 'passwords')
  writeFileSync(passwords, Object.entries(users).map(([u, p]) => `${u}:${p}\n`).join(''), { mode: 0o644 })
  const hashed = spawnSync('mosquitto_passwd', ['-U', passwords], { encoding: 'utf8' })
  if (hashed.status !== 0) throw new Error(`mosquitto_passwd failed: ${hashed.stderr}`)
  chmodSync(passwords, 0o644)
  const acl = join(dir, 'agentmesh.acl')
  writeFileSync(acl, readFileSync(new URL('../../examples/mosquitto/agentmesh.acl', import.meta.url)), { mode: 0o644 })
  const broker = await startMosquitto(['allow_anonymous false', `password_file ${passwords}`, `acl_file ${acl}`, 'max_queued_messages 10000'], port)
  return { ...broker, stop: async (signal) => { await broker.stop(signal); rmSync(dir, { recursive: true, force: true }) } }
}

/** A CA and a server certificate for 127.0.0.1 (openssl), in a directory mosquitto can read. */
export function makeTlsFiles (): { dir: string, ca: string, cert: string, key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-mosquitto-tls-'))
  chmodSync(dir, 0o755)
  const f = (name: string): string => join(dir, name)
  const run = (args: string[]): void => {
    const r = spawnSync('openssl', args, { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`)
  }
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=agentmesh test CA', '-keyout', f('ca.key'), '-out', f('ca.pem')])
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr')])
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  run(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.pem')])
  for (const name of ['ca.pem', 'server.pem', 'server.key']) chmodSync(f(name), 0o644)
  return { dir, ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') }
}
