/** Can this machine run the lab? (A test skips with the reason when not.) */
import { access, constants } from 'node:fs/promises'
import { join } from 'node:path'
import { addNamespace, deleteNamespace, execIn, randomTag, run, PREFIX_ROOT } from './netns.ts'
import { natRuleset } from './nat.ts'

async function onPath (cmd: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin'])) {
    if (dir === '') continue
    try { await access(join(dir, cmd), constants.X_OK); return true } catch { /* next */ }
  }
  return false
}

/** Whether this machine can build a lab: root, working `ip netns`, nftables NAT in a namespace, ss, sysctl, turnserver. */
export async function labSupport (): Promise<{ ok: true } | { ok: false, reason: string }> {
  if (process.platform !== 'linux') return { ok: false, reason: `needs Linux, this is ${process.platform}` }
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (network namespaces)' }
  for (const cmd of ['ip', 'nft', 'ss', 'sysctl', 'turnserver']) {
    if (!(await onPath(cmd))) return { ok: false, reason: `${cmd} not found${cmd === 'turnserver' ? ' (apt-get install coturn)' : cmd === 'nft' ? ' (apt-get install nftables)' : ''}` }
  }
  const probe = `${PREFIX_ROOT}${process.pid.toString(36)}-probe${randomTag()}`
  try {
    await addNamespace(probe)
    await execIn(probe, 'nft', ['-f', '-'], { input: natRuleset('lo') })
    return { ok: true }
  } catch (err) {
    return { ok: false, reason: `network namespaces or nftables NAT unusable: ${(err as Error).message}` }
  } finally {
    await deleteNamespace(probe).catch(() => {})
  }
}

/** Whether `delayMs` can work here: tc with the netem qdisc (some VM kernels are built without it). */
export async function netemSupport (): Promise<boolean> {
  const probe = `${PREFIX_ROOT}${process.pid.toString(36)}-probe${randomTag()}`
  try {
    await addNamespace(probe)
    await run('tc', ['-n', probe, 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'])
    return true
  } catch {
    return false
  } finally {
    await deleteNamespace(probe).catch(() => {})
  }
}
