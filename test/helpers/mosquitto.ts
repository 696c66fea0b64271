// A real mosquitto broker for tests: its own config on a free loopback port, started and stopped
// per test file. Run as root, mosquitto drops privileges to user `mosquitto`, so the config
// directory and files must be readable by others. `.ci/run` installs Debian's mosquitto.
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports.ts'

export interface Broker {
  url: string
  port: number
  stop: () => Promise<void>
}

export function hasMosquitto (): boolean {
  return spawnSync('mosquitto', ['-h'], { stdio: 'ignore' }).error === undefined
}

/** Extra lines for mosquitto.conf (ACLs, password files: written beside it, readable by mosquitto). */
export async function startMosquitto (extraConfig: string[] = []): Promise<Broker> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(await freePort(), extraConfig)
    } catch (err) {
      // Another process may take the free port before mosquitto binds it.
      if (attempt >= 5 || !/Address already in use/.test((err as Error).message)) throw err
    }
  }
}

async function startOnce (port: number, extraConfig: string[]): Promise<Broker> {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-mosquitto-'))
  chmodSync(dir, 0o755)
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning', ...extraConfig, ''].join('\n'), { mode: 0o644 })
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
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
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

