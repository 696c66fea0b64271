// Live tasks from the activity stream: each task's DAG of subtasks, and for each subtask the
// router's candidates and scores, its choice, dispatches, reroutes, escalations and agreement.
import { h, fill, table, shortId, num } from './render.js'

const tasks = new Map()
const MAX_TASKS = 50

/** Folds one activity event into the task models; returns the task it touched, if any. */
export function applyTaskEvent (e) {
  if (e.type === 'task-submitted') {
    const deps = e.dependsOn ?? {}
    const task = { id: e.task, status: 'running', reason: undefined, result: undefined, subtasks: new Map() }
    for (const id of e.subtasks) task.subtasks.set(id, { id, dependsOn: deps[id] ?? [], status: 'waiting', route: undefined, dispatches: [], reroutes: [], escalations: [], agreement: undefined })
    tasks.set(e.task, task)
    while (tasks.size > MAX_TASKS) tasks.delete(tasks.keys().next().value)
    return task
  }
  const task = tasks.get(e.task)
  if (task === undefined) return undefined
  if (e.type === 'task-finished' || e.type === 'task-ended-by-restart') {
    task.status = e.status ?? 'cancelled'
    task.reason = e.reason
    return task
  }
  if (e.type !== 'task-trace') return undefined
  const entry = e.entry
  if (entry.subtask === undefined) {
    if (entry.kind === 'escalate') task.reason = entry.reason
    return task
  }
  const sub = task.subtasks.get(entry.subtask)
  if (sub === undefined) return task
  switch (entry.kind) {
    case 'route': sub.route = entry.detail ?? {}; sub.status = 'routed'; break
    case 'dispatch': sub.dispatches.push({ agent: entry.agent, attempt: entry.attempt }); sub.status = 'running'; break
    case 'result': { const d = sub.dispatches.find(x => x.attempt === entry.attempt); if (d !== undefined) d.answered = true; break }
    case 'reroute': sub.reroutes.push({ agent: entry.agent, reason: entry.reason }); break
    case 'escalate': sub.escalations.push(entry.reason); sub.status = 'escalated'; break
    case 'more': sub.escalations.push(`more executions: ${entry.reason}`); break
    case 'agree': sub.agreement = { reason: entry.reason, detail: entry.detail }; sub.status = entry.reason === undefined ? 'agreed' : 'disagreed'; break
    case 'done': sub.status = 'done'; break
  }
  return task
}

/** Sets a finished task's result (from GET /tasks/<id>). */
export function setResult (id, result) {
  const task = tasks.get(id)
  if (task !== undefined) task.result = result
}

export function renderTasks (container) {
  fill(container, [...tasks.values()].reverse().map(taskCard))
}

function taskCard (task) {
  return h('div', { className: 'task', dataset: { task: task.id } },
    h('div', {}, h('strong', { className: 'mono' }, task.id), ' ', h('span', { className: `task-status ${task.status}` }, task.status)),
    task.reason !== undefined ? h('div', { className: 'error' }, task.reason) : null,
    h('div', { className: 'dag' }, layers(task).map(layer => h('div', { className: 'layer' }, layer.map(subtaskBox)))),
    task.result !== undefined ? h('pre', { className: 'task-result' }, JSON.stringify(task.result, null, 1)) : null)
}

/** Subtasks in columns by depth: each column depends only on columns to its left. */
function layers (task) {
  const depth = new Map()
  const depthOf = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id)
    if (seen.has(id)) return 0
    seen.add(id)
    const deps = task.subtasks.get(id)?.dependsOn ?? []
    const d = deps.length === 0 ? 0 : 1 + Math.max(...deps.map(x => depthOf(x, seen)))
    depth.set(id, d)
    return d
  }
  const out = []
  for (const id of task.subtasks.keys()) (out[depthOf(id)] ??= []).push(task.subtasks.get(id))
  return out.filter(Boolean)
}

function subtaskBox (sub) {
  const route = sub.route ?? {}
  const scores = new Map((route.scores ?? []).map(s => [s.agent, s]))
  const similarity = new Map((route.screened ?? []).map(s => [s.agent, s.similarity]))
  const agents = route.scores !== undefined ? route.scores.map(s => s.agent) : (route.candidates ?? [])
  return h('div', { className: 'subtask', dataset: { subtask: sub.id } },
    h('div', {}, h('strong', {}, sub.id), ' ', h('span', { className: `subtask-status ${sub.status}` }, sub.status)),
    sub.dependsOn.length > 0 ? h('div', { className: 'deps' }, `after ${sub.dependsOn.join(', ')}`) : null,
    route.reason !== undefined ? h('div', { className: 'error' }, `routing: ${route.reason}`) : null,
    agents.length > 0
      ? table(['candidate', 'similarity', 'score (mean + bonus)'], agents.map(a => ({
          props: { className: a === route.chosen ? 'chosen' : undefined },
          cells: [`${a === route.chosen ? '★ ' : ''}${shortId(a)}`, num(similarity.get(a)), scores.has(a) ? `${num(scores.get(a).score)} (${num(scores.get(a).mean)} + ${num(scores.get(a).bonus)})` : '']
        })))
      : null,
    route.chosen !== undefined ? h('div', { className: 'choice' }, `${route.policy ?? 'policy'} chose ${shortId(route.chosen)}: the highest score`) : null,
    sub.dispatches.length > 0 ? h('div', {}, 'dispatched to ', sub.dispatches.map(d => `${shortId(d.agent)}${d.answered ? ' ✓' : ''}`).join(', ')) : null,
    sub.reroutes.map(r => h('div', { className: 'reroute' }, `rerouted from ${shortId(r.agent)}: ${r.reason ?? ''}`)),
    sub.escalations.map(r => h('div', { className: 'escalation error' }, `escalated: ${r ?? ''}`)),
    sub.agreement !== undefined ? h('div', { className: 'agreement' }, agreementText(sub.agreement)) : null)
}

function agreementText (a) {
  const cert = a.detail?.certificate
  if (a.reason !== undefined) return `committee did not agree: ${a.reason}`
  return `committee agreed${cert !== undefined ? `, certificate ${String(cert).slice(0, 12)}…` : ''}`
}
