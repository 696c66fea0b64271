/**
 * `agentmesh lab` topology: an "internet" namespace holding a bridge; seed hosts and a STUN server on
 * it (10.250.0.0/16); K NAT routers, each with a WAN leg on the bridge (10.250.1.k) and a LAN bridge
 * (192.168.k.0/24) with P hosts behind it. Every namespace, veth and bridge lives inside namespaces
 * made here (nothing in the root namespace), named with a per-run prefix, and is removed by
 * `destroy()`, on a failed build, on SIGINT/SIGTERM/SIGHUP and on process exit.
 *
 * The routers masquerade (nftables) on their WAN leg and drop unsolicited inbound traffic before
 * conntrack confirms it, so a LAN host reaches the public side (TCP and UDP) but nothing reaches
 * into a LAN, and UDP hole punching between two LANs works (see `natRuleset`).
 */
import { type ChildProcess, type SpawnOptions } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  addNamespace, deleteNamespace, deleteNamespaceSync, execIn, ipIn, listNamespaces, newPrefix, randomTag, run, spawnIn
} from './netns.ts'
import { natRuleset } from './nat.ts'
import { STUN_PORT, turnserverArgs, untilUdpListening } from './stun.ts'

export { sweepStale, PREFIX_ROOT } from './netns.ts'
export { labSupport, netemSupport } from './support.ts'
export { natRuleset } from './nat.ts'

export interface Host {
  /** Namespace name: run things with `lab.spawn(host, …)` or `ip netns exec <ns> …`. */
  ns: string
  /** The host's IPv4 address (public 10.250.x.y, or 192.168.k.x inside LAN k). */
  addr: string
  /** Its interface towards the network (inside `ns`). */
  dev: string
}

export interface LabLan {
  /** The NAT router; `router.addr` is its LAN address (192.168.k.1), the hosts' default gateway. */
  router: Host
  /** The router's public address (10.250.1.k): what the public side sees LAN hosts as. */
  wanAddr: string
  subnet: string
  peers: Host[]
}

export interface LabOptions {
  seeds: number
  lans: number
  peersPerLan: number
  /** tc netem delay on each WAN link, applied in both directions (so LAN↔seed RTT gains 2×, LAN↔LAN 4×). Needs netem in the kernel. */
  delayMs?: number
  /** Packet loss (percent, 0..100, two decimals) on each WAN link, each direction; nftables, no netem needed. */
  lossPct?: number
  /** Namespace name prefix; default `amlab<pid base 36>-<random>-` (what `sweepStale` recognises). */
  prefix?: string
}

export interface Lab {
  readonly prefix: string
  readonly seeds: Host[]
  readonly stun: { ns: string, addr: string, port: number, logFile: string }
  readonly lans: LabLan[]
  /** Every namespace this lab made. */
  readonly namespaces: readonly string[]
  /** A scratch directory for the lab's files (data directories, configs); removed with the lab, also on a signal. */
  readonly dir: string
  /** Spawns `cmd args` inside `host`'s namespace, in its own process group; killed (whole group) on destroy. */
  spawn: (host: Host | string, cmd: string, args: readonly string[], opts?: SpawnOptions) => ChildProcess
  /** Runs `cmd args` inside `host`'s namespace and resolves with its stdout. */
  exec: (host: Host | string, cmd: string, args: readonly string[]) => Promise<string>
  /** Kills everything spawned and removes every namespace (and so every link) made. Idempotent. */
  destroy: () => Promise<void>
  /** How many namespaces with this run's prefix are still present. */
  namespacesLeft: () => Promise<number>
}

const INET = '10.250'
const MAX_SEEDS = 200
const MAX_LANS = 250
const MAX_PEERS = 200

const live = new Set<LabImpl>()
let handlersInstalled = false

/** Once per process: tear down every live lab on exit and on SIGINT/SIGTERM/SIGHUP (then let the signal do its default). */
function installHandlers (): void {
  if (handlersInstalled) return
  handlersInstalled = true
  process.on('exit', () => { for (const lab of live) lab.destroySync() })
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      void Promise.allSettled([...live].map(async lab => { await lab.destroy() })).finally(() => {
        process.off(sig, handler)
        // Nobody else handles it: re-raise so the process ends the way it would have without us.
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
      })
    }
    process.on(sig, handler)
  }
}

class LabImpl implements Lab {
  readonly seeds: Host[] = []
  readonly lans: LabLan[] = []
  stun!: { ns: string, addr: string, port: number, logFile: string }
  private readonly made: string[] = []
  private readonly children = new Set<ChildProcess>()
  private readonly inflight = new Set<Promise<unknown>>()
  private readonly tmp: string
  private readonly tag: string
  private destroying: Promise<void> | undefined

  readonly prefix: string

  constructor (prefix: string) {
    this.prefix = prefix
    this.tag = `am${randomTag()}`
    this.tmp = mkdtempSync(join(tmpdir(), `${prefix}`))
  }

  get namespaces (): readonly string[] { return [...this.made] }
  get dir (): string { return this.tmp }

  /** Interface name inside one of our namespaces: `am<tag>-<role>`, at most 15 characters. */
  private dev (role: string): string {
    const name = `${this.tag}-${role}`
    if (name.length > 15) throw new Error(`interface name too long: ${name}`)
    return name
  }

  /** One build step; refused once destroy has started, and awaited by destroy before it cleans up. */
  private async step<T> (fn: () => Promise<T>): Promise<T> {
    if (this.destroying !== undefined) throw new Error('lab destroyed during build')
    const p = fn()
    this.inflight.add(p)
    try { return await p } finally { this.inflight.delete(p) }
  }

  private async ns (role: string): Promise<string> {
    const name = `${this.prefix}${role}`
    this.made.push(name) // recorded first: a half-made namespace is still removed
    await this.step(async () => { await addNamespace(name) })
    return name
  }

  private async ip (ns: string, ...args: string[]): Promise<void> { await this.step(async () => await ipIn(ns, args)) }

  /** A veth pair created directly across two of our namespaces (never in the root namespace). */
  private async veth (aNs: string, aDev: string, bNs: string, bDev: string): Promise<void> {
    await this.ip(aNs, 'link', 'add', aDev, 'type', 'veth', 'peer', 'name', bDev, 'netns', bNs)
  }

  /** netem delay on `dev`'s egress; a clear error if the kernel has no netem (loss is done in nftables instead). */
  private async delay (ns: string, dev: string, delayMs?: number): Promise<void> {
    if (delayMs === undefined || delayMs <= 0) return
    await this.step(async () => {
      try {
        await run('tc', ['-n', ns, 'qdisc', 'add', 'dev', dev, 'root', 'netem', 'delay', `${delayMs}ms`])
      } catch (err) {
        if (/qdisc kind is unknown/i.test((err as Error).message)) throw new Error('delay needs tc netem, which this kernel lacks (CONFIG_NET_SCH_NETEM); --loss works without it')
        throw err
      }
    })
  }

  async build (opts: LabOptions): Promise<void> {
    const inet = await this.ns('inet')
    const br = this.dev('br')
    await this.ip(inet, 'link', 'add', br, 'type', 'bridge')
    await this.ip(inet, 'link', 'set', br, 'up')

    const publicHost = async (role: string, addr: string): Promise<Host> => {
      const ns = await this.ns(role)
      const dev = this.dev('eth0')
      const port = this.dev(role)
      await this.veth(ns, dev, inet, port)
      await this.ip(inet, 'link', 'set', port, 'master', br, 'up')
      await this.ip(ns, 'addr', 'add', `${addr}/16`, 'dev', dev)
      await this.ip(ns, 'link', 'set', dev, 'up')
      return { ns, addr, dev }
    }

    const stunHost = await publicHost('stun', `${INET}.0.2`)
    this.stun = { ns: stunHost.ns, addr: stunHost.addr, port: STUN_PORT, logFile: join(this.tmp, 'turnserver.log') }
    for (let i = 0; i < opts.seeds; i++) this.seeds.push(await publicHost(`s${i}`, `${INET}.0.${10 + i}`))

    for (let k = 1; k <= opts.lans; k++) {
      const r = await this.ns(`r${k}`)
      const wan = this.dev('wan')
      const port = this.dev(`r${k}`)
      const wanAddr = `${INET}.1.${k}`
      await this.veth(r, wan, inet, port)
      await this.ip(inet, 'link', 'set', port, 'master', br, 'up')
      await this.ip(r, 'addr', 'add', `${wanAddr}/16`, 'dev', wan)
      await this.ip(r, 'link', 'set', wan, 'up')
      await this.delay(r, wan, opts.delayMs)
      await this.delay(inet, port, opts.delayMs)
      const lan = this.dev('lan')
      const router: Host = { ns: r, addr: `192.168.${k}.1`, dev: lan }
      await this.ip(r, 'link', 'add', lan, 'type', 'bridge')
      await this.ip(r, 'addr', 'add', `${router.addr}/24`, 'dev', lan)
      await this.ip(r, 'link', 'set', lan, 'up')
      await this.step(async () => await execIn(r, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']))
      await this.step(async () => await execIn(r, 'nft', ['-f', '-'], { input: natRuleset(wan, opts.lossPct) }))

      const peers: Host[] = []
      for (let j = 0; j < opts.peersPerLan; j++) {
        const h = await this.ns(`l${k}h${j}`)
        const dev = this.dev('eth0')
        const hp = this.dev(`h${j}`)
        const addr = `192.168.${k}.${10 + j}`
        await this.veth(h, dev, r, hp)
        await this.ip(r, 'link', 'set', hp, 'master', lan, 'up')
        await this.ip(h, 'addr', 'add', `${addr}/24`, 'dev', dev)
        await this.ip(h, 'link', 'set', dev, 'up')
        await this.ip(h, 'route', 'add', 'default', 'via', router.addr)
        peers.push({ ns: h, addr, dev })
      }
      this.lans.push({ router, wanAddr, subnet: `192.168.${k}.0/24`, peers })
    }

    const turn = this.spawn(stunHost, 'turnserver', turnserverArgs(stunHost.addr, STUN_PORT, this.tmp), { stdio: 'ignore' })
    await this.step(async () => { await untilUdpListening(stunHost.ns, stunHost.addr, STUN_PORT, turn) })
  }

  spawn (host: Host | string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    if (this.destroying !== undefined) throw new Error('lab is destroyed')
    const ns = typeof host === 'string' ? host : host.ns
    if (!this.made.includes(ns)) throw new Error(`namespace ${ns} is not part of this lab`)
    const child = spawnIn(ns, cmd, args, opts)
    this.children.add(child)
    child.once('exit', () => { this.children.delete(child) })
    child.once('error', () => { this.children.delete(child) })
    return child
  }

  async exec (host: Host | string, cmd: string, args: readonly string[]): Promise<string> {
    const ns = typeof host === 'string' ? host : host.ns
    if (!this.made.includes(ns)) throw new Error(`namespace ${ns} is not part of this lab`)
    return await execIn(ns, cmd, args)
  }

  async namespacesLeft (): Promise<number> {
    return (await listNamespaces()).filter(n => n.startsWith(this.prefix)).length
  }

  async destroy (): Promise<void> {
    this.destroying ??= this.teardown()
    await this.destroying
  }

  private async teardown (): Promise<void> {
    await Promise.allSettled([...this.inflight])
    // Ask spawned process groups to stop, give them a moment, then kill whatever is left.
    const exits = [...this.children].map(async c => await new Promise<void>(resolve => {
      if (c.exitCode !== null || c.signalCode !== null) { resolve(); return }
      c.once('exit', () => { resolve() })
    }))
    for (const c of this.children) killGroup(c, 'SIGTERM')
    await Promise.race([Promise.all(exits), new Promise(resolve => setTimeout(resolve, 1500).unref())])
    for (const c of this.children) killGroup(c, 'SIGKILL')
    // deleteNamespace also SIGKILLs any process still inside (including grandchildren in other groups).
    const results = await Promise.allSettled([...this.made].reverse().map(async n => { await deleteNamespace(n) }))
    rmSync(this.tmp, { recursive: true, force: true })
    live.delete(this)
    const failed = results.filter(r => r.status === 'rejected')
    if (failed.length > 0) throw new AggregateError(failed.map(r => (r as PromiseRejectedResult).reason), 'lab teardown left namespaces behind')
  }

  /** Teardown for the process 'exit' event: synchronous, best effort. */
  destroySync (): void {
    for (const c of this.children) killGroup(c, 'SIGKILL')
    for (const n of [...this.made].reverse()) deleteNamespaceSync(n)
    rmSync(this.tmp, { recursive: true, force: true })
    live.delete(this)
  }
}

function killGroup (child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try { process.kill(-child.pid, signal) } catch { try { child.kill(signal) } catch { /* gone */ } }
}

function checkOptions (opts: LabOptions): void {
  const count = (v: number, max: number, what: string): void => {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new Error(`${what} must be an integer 0..${max}, got ${v}`)
  }
  count(opts.seeds, MAX_SEEDS, 'seeds')
  count(opts.lans, MAX_LANS, 'lans')
  count(opts.peersPerLan, MAX_PEERS, 'peersPerLan')
  if (opts.delayMs !== undefined && !(opts.delayMs >= 0 && Number.isFinite(opts.delayMs))) throw new Error('delayMs must be >= 0')
  if (opts.lossPct !== undefined && !(opts.lossPct >= 0 && opts.lossPct <= 100)) throw new Error('lossPct must be 0..100')
  if (opts.prefix !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$/.test(opts.prefix)) throw new Error(`bad prefix ${opts.prefix}`)
}

/** Builds the lab; on any failure (or a signal mid-build) everything made so far is removed. */
export async function buildLab (opts: LabOptions): Promise<Lab> {
  checkOptions(opts)
  installHandlers()
  const prefix = opts.prefix ?? newPrefix()
  const taken = (await listNamespaces()).filter(n => n.startsWith(prefix))
  if (taken.length > 0) throw new Error(`namespaces with prefix ${prefix} already exist: ${taken.join(', ')}`)
  const lab = new LabImpl(prefix)
  live.add(lab)
  try {
    await lab.build(opts)
  } catch (err) {
    await lab.destroy().catch(() => {})
    throw err
  }
  return lab
}
