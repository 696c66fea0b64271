/** `agentmesh run` and `agentmesh submit`: hand a task to a running peer and show how it went. */
import { readFile } from 'node:fs/promises'
import { parse as parseYaml } from 'yaml'
import type { TraceEntry } from '../../protocols/task/index.ts'
import { shortId, table } from '../api/present.ts'
import type { TaskReport } from '../services/task-runner.ts'
import { parse, UsageError } from './args.ts'
import { apiTarget, type ApiTarget } from './api-client.ts'
import { MAX_YAML_BYTES } from '../api/limits.ts'
import { API_PORT_OFFSET, DEFAULT_PORT } from './shared.ts'

const TOKEN_HELP = `The API wants the peer's token (DIR/api-token): --data DIR names the peer's data directory
(its port and token are read from there); without it, the token of the running peer under
$AGENTMESH_HOME (default ~/.agentmesh) whose API is on that port is used.`

export const runHelp = `agentmesh run "<request>" [--input JSON] [--skills a,b] [--api-port P] [--data DIR] [--json]

Asks the peer whose API is on 127.0.0.1:P (default ${DEFAULT_PORT + API_PORT_OFFSET}) to find an agent for the
request and run it with the given input. Prints the result and how the agent was chosen.
${TOKEN_HELP}
Example: agentmesh run "what is 17 times 23" --input '{"expression": "17 * 23"}'`

export const submitHelp = `agentmesh submit FILE [--api-port P] [--data DIR] [--json]

Runs a task DAG from a YAML or JSON file on the peer whose API is on 127.0.0.1:P and prints the
result and the routing explanation of every subtask (candidates, UCB mean and bonus, reroutes).
${TOKEN_HELP}`

export async function runCommand (argv: string[]): Promise<number> {
  const { values, positionals } = parse('run', argv, {
    input: { type: 'string' }, skills: { type: 'string' }, 'api-port': { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' }
  }, true)
  const text = positionals.join(' ').trim()
  if (text === '' && values.skills === undefined) throw new UsageError('run: say what you need, e.g. agentmesh run "convert 5 miles to km" --input \'{"value":5,"from":"mi","to":"km"}\'')
  let input: unknown = null
  if (values.input !== undefined) {
    try {
      input = JSON.parse(values.input)
    } catch (err) {
      throw new UsageError(`run: --input must be JSON (${(err as Error).message}) — quote it for the shell, e.g. --input '{"expression": "1+1"}'`)
    }
  }
  const body = { ...(text !== '' ? { text } : {}), ...(values.skills !== undefined ? { skills: values.skills.split(',').map(s => s.trim()).filter(Boolean) } : {}), input }
  const api = await apiTarget('run', { apiPort: values['api-port'], data: values.data })
  const report = await post('run', api, '/run', JSON.stringify(body), 'application/json')
  return show(report, values.json === true)
}

export async function submitCommand (argv: string[]): Promise<number> {
  const { values, positionals } = parse('submit', argv, { 'api-port': { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' } }, true)
  const file = positionals[0]
  if (file === undefined || positionals.length > 1) throw new UsageError('submit: give one task file, e.g. agentmesh submit task.yaml')
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new UsageError(`submit: cannot read ${file}: ${(err as Error).message} — check the path`)
  }
  const api = await apiTarget('submit', { apiPort: values['api-port'], data: values.data })
  let type = file.endsWith('.json') ? 'application/json' : 'application/yaml'
  // The API takes YAML up to MAX_YAML_BYTES (its parser is slow on large input): a larger file is
  // the user's own, so it is parsed here and sent as JSON.
  if (type === 'application/yaml' && Buffer.byteLength(text) > MAX_YAML_BYTES) {
    try {
      text = JSON.stringify(parseYaml(text))
    } catch (err) {
      throw new UsageError(`submit: ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
    }
    type = 'application/json'
  }
  const report = await post('submit', api, '/tasks?wait=1', text, type)
  return show(report, values.json === true)
}

/** Runs a YAML task on the peer with that API port and data directory (for its token) and waits for its report. */
export async function submitTask (apiPort: number, dataDir: string, yaml: string): Promise<TaskReport> {
  return await post('submit', await apiTarget('submit', { apiPort: String(apiPort), data: dataDir }), '/tasks?wait=1', yaml, 'application/yaml')
}

async function post (command: string, api: ApiTarget, path: string, body: string, type: string): Promise<TaskReport> {
  let res: Response
  try {
    res = await fetch(`${api.base}${path}`, { method: 'POST', body, headers: { 'content-type': type, ...api.headers } })
  } catch (err) {
    throw new UsageError(`${command}: no agentmesh peer answered on 127.0.0.1:${api.port} (${String((err as { cause?: Error }).cause?.message ?? (err as Error).message)}) — start one with \`npm start\` or \`agentmesh node\`, or point at it with --api-port`)
  }
  const answer = await res.json().catch(() => ({})) as TaskReport & { error?: string }
  if (res.status === 401) throw new UsageError(`${command}: the peer wants its API token: ${answer.error ?? res.statusText}`)
  if (!res.ok) throw new UsageError(`${command}: the peer refused the task: ${answer.error ?? res.statusText}`)
  return answer
}

function show (report: TaskReport, json: boolean): number {
  if (json) console.log(JSON.stringify(report, null, 2))
  else printReport(report)
  return report.status === 'done' ? 0 : 1
}

/** The result and, per subtask, how its agent was chosen and what failed. */
export function printReport (report: TaskReport): void {
  const took = report.trace.length > 1 ? report.trace.at(-1)!.at - report.trace[0]!.at : 0
  console.log(`task ${report.id}: ${report.status}${report.reason !== undefined ? ` — ${report.reason}` : ''} (${took} ms, spent ${round(report.spent)})`)
  if (Object.keys(report.result).length > 0) console.log(`result:\n${indent(JSON.stringify(Object.keys(report.result).length === 1 ? Object.values(report.result)[0] : report.result, null, 2))}`)
  for (const subtask of [...new Set(report.trace.flatMap(t => t.subtask === undefined ? [] : [t.subtask]))]) {
    console.log(`\nsubtask ${subtask}`)
    console.log(indent(explain(report.trace.filter(t => t.subtask === subtask))))
  }
}

/** One subtask's routing decisions and failures, as people read them. */
function explain (trace: TraceEntry[]): string {
  const lines: string[] = []
  for (const t of trace) {
    if (t.kind === 'route') {
      const d = (t.detail ?? {}) as { policy?: string, screened?: Array<{ agent: string, similarity: number }>, scores?: Array<{ agent: string, mean: number, bonus: number, score: number }>, chosen?: string, skipped?: string[], reason?: string }
      const similarity = new Map((d.screened ?? []).map(s => [s.agent, s.similarity]))
      const rows = (d.scores ?? []).map(s => [s.agent === d.chosen ? '→' : ' ', shortAgent(s.agent), String(similarity.get(s.agent) ?? ''), String(s.mean), String(s.bonus), String(s.score)])
      lines.push(`route (${d.policy ?? 'router'})${d.reason !== undefined ? `: ${d.reason}` : ''}`)
      if (rows.length > 0) lines.push(indent(table([' ', 'CANDIDATE', 'SIMILARITY', 'UCB MEAN', 'BONUS', 'SCORE'], rows)))
      if ((d.skipped ?? []).length > 0) lines.push(`  no beacon answer in time: ${d.skipped!.map(shortAgent).join(', ')}`)
    }
    if (t.kind === 'dispatch') lines.push(`dispatch #${t.attempt} to ${shortAgent(t.agent ?? '')}`)
    if (t.kind === 'reroute') lines.push(`reroute: ${shortAgent(t.agent ?? '')} ${t.reason ?? ''}`)
    if (t.kind === 'more') lines.push(`one more agent: ${t.reason ?? ''}`)
    if (t.kind === 'agree') {
      const d = (t.detail ?? {}) as { certificate?: string, committee?: number, power?: string, agreed?: string[], disagreed?: string[] }
      if (d.certificate !== undefined) {
        lines.push(`agreed by a committee of ${d.committee ?? '?'} (power ${d.power ?? '?'}), certificate ${d.certificate}`)
        lines.push(`  agreed: ${(d.agreed ?? []).map(shortAgent).join(', ') || 'nobody'}${(d.disagreed ?? []).length > 0 ? `; disagreed: ${d.disagreed!.map(shortAgent).join(', ')}` : ''}`)
      }
      if (t.reason !== undefined) lines.push(`no agreement: ${t.reason}`)
    }
    if (t.kind === 'escalate') lines.push(`escalate: ${t.reason ?? ''}`)
    if (t.kind === 'done') lines.push('done')
  }
  return lines.join('\n')
}

function shortAgent (agent: string): string {
  const slash = agent.indexOf('/')
  return slash < 0 ? agent : `${shortId(agent.slice(0, slash))}/${agent.slice(slash + 1)}`
}

const indent = (text: string): string => text.split('\n').map(l => `  ${l}`).join('\n')
const round = (x: number): number => Math.round(x * 1000) / 1000
