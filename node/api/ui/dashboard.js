// The dashboard: reads the peer's JSON API and its /events stream, renders everything as text
// (render.js), and checks certificates itself (verify.js).
import { h, fill, table, shortId, num } from './render.js'
import { verifyCertificate } from './verify.js'
import { applyTaskEvent, renderTasks, setResult } from './tasks.js'

const $ = id => document.getElementById(id)

// ---- the token: from the URL fragment (never sent to the server) into this tab's storage ----
const TOKEN_KEY = 'agentmesh-api-token'
const fragment = new URLSearchParams(location.hash.slice(1))
if (fragment.has('token')) {
  sessionStorage.setItem(TOKEN_KEY, fragment.get('token'))
  history.replaceState(null, '', location.pathname + location.search)
}
const token = () => sessionStorage.getItem(TOKEN_KEY)
$('token-state').textContent = token() === null ? 'no API token: read-only (open the URL the peer prints)' : 'API token loaded'

async function api (path, init = {}) {
  const headers = { ...(init.headers ?? {}) }
  if (token() !== null) headers.authorization = `Bearer ${token()}`
  const res = await fetch(path, { ...init, headers, cache: 'no-store' })
  const body = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }))
  if (!res.ok) throw new Error(body.error ?? `${res.status}`)
  return body
}

const errorBox = err => h('div', { className: 'error' }, String(err.message ?? err))
const skillsOf = text => text.split(',').map(s => s.trim()).filter(s => s !== '')

// ---- mesh ------------------------------------------------------------------------------------
async function loadMesh () {
  try {
    const [status, peers] = await Promise.all([api('/status'), api('/peers')])
    fill($('identity'), h('span', { className: 'mono' }, `peer ${shortId(status.peerId)}`), ` · ${status.network ?? ''}`)
    fill($('status'), table(['peer', 'reachability', 'connections', 'known peers', 'agents', 'local agents'], [[
      h('span', { className: 'mono', title: status.peerId }, shortId(status.peerId)),
      status.reachability?.text ?? '',
      Object.entries(status.connections ?? {}).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none',
      String(status.knownPeers ?? ''), String(status.agents ?? ''), (status.localAgents ?? []).join(', ')
    ]]))
    fill($('peers'), table(['connected peer', 'kind', 'direction', 'address', 'RTT ms', 'gossip score'],
      peers.map(p => [h('span', { className: 'mono', title: p.peerId }, shortId(p.peerId)), p.kind, p.direction, h('span', { className: 'mono' }, p.addr), p.rttMs ?? '', p.gossipScore ?? ''])))
  } catch (err) {
    fill($('status'), errorBox(err))
  }
}

// ---- agents and the routing preview ------------------------------------------------------------
async function loadAgents () {
  try {
    const agents = await api('/agents')
    fill($('agents-table'), table(['agent', 'description', 'skills', 'cost', 'latency ms', 'capacity'],
      agents.map(a => ({ props: { dataset: { agent: a.agent } }, cells: [h('span', { className: 'mono', title: a.agent }, shortId(a.agent)), h('div', { className: 'desc', title: a.description }, a.description), a.skills.join(', '), String(a.cost), String(a.latencyMs), String(a.capacity)] }))))
  } catch (err) {
    fill($('agents-table'), errorBox(err))
  }
}

$('route-form').addEventListener('submit', async event => {
  event.preventDefault()
  const query = new URLSearchParams()
  const text = $('route-text').value.trim()
  const skills = skillsOf($('route-skills').value)
  if (text !== '') query.set('text', text)
  if (skills.length > 0) query.set('skills', skills.join(','))
  fill($('route-result'), 'asking the router…')
  try {
    const { explanation: x } = await api(`/route?${query}`)
    if (x.chosen === undefined) return fill($('route-result'), h('div', { className: 'route-none' }, x.reason ?? 'no candidate'))
    const score = new Map((x.scores ?? []).map(s => [s.agent, s]))
    const state = new Map((x.states ?? []).map(s => [s.agent, s]))
    fill($('route-result'),
      h('div', { className: 'route-choice' }, `would pick ${shortId(x.chosen)} — ${x.policy} gives it the highest score (expected reward + exploration bonus); task type “${x.taskType}”`),
      table(['candidate', 'similarity', 'shortlisted', 'scored with', 'mean', 'bonus', 'score'],
        x.screened.map(s => {
          const sc = score.get(s.agent)
          const st = state.get(s.agent)
          return {
            props: { className: s.agent === x.chosen ? 'chosen' : undefined },
            cells: [`${s.agent === x.chosen ? '★ ' : ''}${shortId(s.agent)}`, num(s.similarity), s.shortlisted ? 'yes' : 'no (weaker match)',
              st === undefined ? '' : `${st.from}: load ${num(st.load)}, ${st.latencyMs} ms, reputation ${num(st.reputation)}`,
              num(sc?.mean), num(sc?.bonus), num(sc?.score)]
          }
        }), { className: 'route-table' }))
  } catch (err) {
    fill($('route-result'), errorBox(err))
  }
})

// ---- running a task ----------------------------------------------------------------------------
$('run-form').addEventListener('submit', async event => {
  event.preventDefault()
  const body = { text: $('run-text').value.trim() }
  const skills = skillsOf($('run-skills').value)
  if (skills.length > 0) body.skills = skills
  try {
    const input = $('run-input').value.trim()
    if (input !== '') body.input = JSON.parse(input)
  } catch (err) {
    return fill($('run-result'), errorBox(new Error(`input is not JSON: ${err.message}`)))
  }
  fill($('run-result'), 'running…')
  try {
    const report = await api('/run', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    fill($('run-result'), h('div', { className: 'run-report' }, h('span', { className: report.status }, report.status), ` ${report.id}`, report.reason !== undefined ? ` — ${report.reason}` : '', h('pre', {}, JSON.stringify(report.result, null, 1))))
  } catch (err) {
    fill($('run-result'), errorBox(err))
  }
})

// ---- certificates, each verified here --------------------------------------------------------
const verdicts = new Map()
async function loadCertificates () {
  try {
    const ids = (await api('/certificates')).slice(-30).reverse()
    await Promise.all(ids.filter(id => !verdicts.has(id)).map(async id => {
      try {
        verdicts.set(id, { json: await api(`/certificates/${encodeURIComponent(id)}`), check: undefined })
        verdicts.get(id).check = await verifyCertificate(verdicts.get(id).json)
      } catch (err) {
        verdicts.set(id, { check: { ok: false, problems: [String(err.message ?? err)] } })
      }
    }))
    fill($('certificate-list'), ids.filter(id => verdicts.get(id)?.check !== undefined).map(id => certificateRow(id, verdicts.get(id))))
  } catch (err) {
    fill($('certificate-list'), errorBox(err))
  }
}

function certificateRow (id, { json, check }) {
  const outcome = json?.outcome
  return h('div', { className: 'task', dataset: { certificate: id } },
    h('span', { className: `verdict ${check.ok ? 'verified' : 'failed'}` }, check.ok ? 'verified' : 'failed'), ' ',
    h('span', { className: 'mono' }, `${id.slice(0, 16)}…`),
    check.ok && check.instance !== id ? h('span', { className: 'error' }, ' (served under another id)') : null,
    h('div', {}, outcome?.kind === 'answer' ? `answer ${JSON.stringify(outcome.answer)}` : `escalated: ${outcome?.reason ?? ''}`),
    check.total !== undefined ? h('div', {}, `${check.signatures} Ed25519 signatures checked in this page; precommits carry ${check.power} of ${check.total} voting power`) : null,
    check.ok ? null : h('ul', { className: 'problems' }, check.problems.map(p => h('li', {}, p))))
}

// ---- reputation --------------------------------------------------------------------------------
async function loadReputation () {
  try {
    const book = await api('/reputation')
    const rows = await Promise.all(book.agents.slice(0, 50).map(async ([agent, ...counts]) => {
      const standing = await api(`/reputation?agent=${encodeURIComponent(agent)}`).catch(() => ({}))
      return [h('span', { className: 'mono', title: agent }, shortId(agent)), num(standing.reputation), num(standing.accuracy), ...counts.map(String)]
    }))
    fill($('reputation-table'), table(['agent', 'reputation', 'accuracy', 'agreed', 'disagreed', 'canary ok', 'canary failed', 'feedback +', 'feedback −'], rows))
  } catch (err) {
    fill($('reputation-table'), errorBox(err))
  }
}

// ---- the live stream ---------------------------------------------------------------------------
let lastId
const later = new Map()
/** Runs `fn` once soon, however many events ask for it meanwhile. */
function soon (key, fn, ms = 300) {
  if (later.has(key)) return
  later.set(key, setTimeout(() => { later.delete(key); fn() }, ms))
}

function onEvent (e) {
  const task = applyTaskEvent(e)
  if (task !== undefined) {
    if (e.type === 'task-finished') api(`/tasks/${encodeURIComponent(e.task)}`).then(v => { setResult(e.task, v.report?.result); soon('tasks', () => renderTasks($('task-list')), 0) }).catch(() => {})
    soon('tasks', () => renderTasks($('task-list')), 50)
  }
  if (e.type.startsWith('consensus-')) { soon('certificates', loadCertificates); soon('reputation', loadReputation) }
  if (e.type === 'agent-added' || e.type === 'agent-removed') soon('agents', loadAgents)
}

/** /events read with fetch (EventSource cannot send the token a non-loopback API needs). */
async function follow () {
  const live = $('live')
  try {
    const headers = { accept: 'text/event-stream' }
    if (token() !== null) headers.authorization = `Bearer ${token()}`
    if (lastId !== undefined) headers['last-event-id'] = lastId
    const res = await fetch('/events', { headers, cache: 'no-store' })
    if (!res.ok) throw new Error((await res.json().catch(() => ({}))).error ?? `HTTP ${res.status}`)
    live.className = 'live on'
    live.textContent = 'events: live'
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      buffer += value
      let end
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        let data = ''
        let type = 'message'
        for (const line of block.split('\n')) {
          if (line.startsWith('id: ')) lastId = line.slice(4)
          else if (line.startsWith('data: ')) data += line.slice(6)
          else if (line.startsWith('event: ')) type = line.slice(7)
        }
        if (type === 'message' && data !== '') onEvent(JSON.parse(data))
      }
    }
    throw new Error('the stream ended')
  } catch (err) {
    live.className = 'live off'
    live.textContent = `events: reconnecting (${err.message})`
    setTimeout(follow, 2000)
  }
}

loadMesh()
loadAgents()
loadCertificates()
loadReputation()
follow()
setInterval(loadMesh, 5000)
