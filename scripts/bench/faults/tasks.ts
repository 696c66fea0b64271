/** The tasks the fault bench submits, and how it reads what became of them. */
import type { Mesh, MeshPeer } from './mesh.ts'

export type Kind = 'fast' | 'slow' | 'trusted-slow' | 'trusted-fast'

export function taskSpec (id: string, kind: Kind, deadlineMs = 40_000): Record<string, unknown> {
  const slow = kind === 'slow' || kind === 'trusted-slow'
  const subtask = slow
    ? { id: 'echo', capability: { text: 'echoes a prompt slowly', skills: ['slow-echo'] }, input: { prompt: id } }
    : { id: 'calc', capability: { text: 'calculate an arithmetic expression', skills: ['arithmetic'] }, input: { expression: `${id.length} * 7 + 1` } }
  return { id, deadlineMs, subtasks: [{ ...subtask, ...(kind.startsWith('trusted') ? { trust: true } : {}) }] }
}

export interface View { status: number, state: string, reason?: string | undefined, trace: Array<{ kind: string, agent?: string, reason?: string, detail?: unknown }> }

export async function view (mesh: Mesh, p: MeshPeer, id: string): Promise<View> {
  try {
    const r = await mesh.api(p, 'GET', `/tasks/${encodeURIComponent(id)}`, undefined, 5000)
    const b = r.body as { status?: string, report?: { reason?: string, trace?: View['trace'] } }
    return { status: r.status, state: r.status === 200 ? b.status ?? '?' : 'missing', reason: b.report?.reason, trace: b.report?.trace ?? [] }
  } catch (err) {
    return { status: 0, state: `unreachable (${(err as Error).message.slice(0, 40)})`, trace: [] }
  }
}

/** Submits without waiting; the id counts as acknowledged only on a 202 or 200. */
export async function submit (mesh: Mesh, p: MeshPeer, id: string, kind: Kind): Promise<boolean> {
  return (await trySubmit(mesh, p, id, kind)) === 'ok'
}

/** 'ok', or why the peer did not take it: `http <status>` or the socket error's code. */
export async function trySubmit (mesh: Mesh, p: MeshPeer, id: string, kind: Kind): Promise<string> {
  try {
    const r = await mesh.api(p, 'POST', '/tasks', taskSpec(id, kind), 5000)
    return r.status === 202 || r.status === 200 ? 'ok' : `http ${r.status}`
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } }
    return e.cause?.code ?? e.name
  }
}

/** Answered = known to the peer and no longer running. */
export const ended = (v: View): boolean => v.status === 200 && v.state !== 'running'
