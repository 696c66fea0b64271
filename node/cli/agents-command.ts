/** `agentmesh agents`: the VCVs a running peer knows, from its HTTP API on 127.0.0.1. */
import { AGENT_HEADERS, agentRows, sortAgents, table, type VcvJson } from '../api/present.ts'
import { parse, UsageError } from './args.ts'
import { apiTarget } from './api-client.ts'
import { API_PORT_OFFSET, DEFAULT_PORT } from './shared.ts'

export const agentsHelp = `agentmesh agents [--api-port P] [--data DIR] [--json]

Lists the agents a running peer knows (default: the peer whose API is on 127.0.0.1:${DEFAULT_PORT + API_PORT_OFFSET},
i.e. \`agentmesh node\` or peer 0 of \`agentmesh up\`; --data DIR: the peer whose data directory is DIR).
--json prints the full VCVs.`

export async function agentsCommand (argv: string[]): Promise<number> {
  const { values } = parse('agents', argv, { 'api-port': { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' } })
  const api = await apiTarget('agents', { apiPort: values['api-port'], data: values.data })
  const url = `${api.base}/agents`
  let agents: VcvJson[]
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000), headers: api.headers })
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    agents = await res.json() as VcvJson[]
  } catch (err) {
    throw new UsageError(`agents: no agentmesh peer answered at ${url} (${(err as Error).cause !== undefined ? String((err as { cause: Error }).cause.message ?? (err as Error).cause) : (err as Error).message}) — start one with \`npm start\` or \`agentmesh node\`, or point at it with --api-port`)
  }
  if (values.json === true) console.log(JSON.stringify(agents, null, 2))
  else console.log(`${agents.length} agents known to the peer at 127.0.0.1:${api.port}\n${table(AGENT_HEADERS, agentRows(sortAgents(agents), Date.now()))}`)
  return 0
}
