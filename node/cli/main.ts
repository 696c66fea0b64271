/** The agentmesh command line: dispatches to one command and turns mistakes into advice. */
import { ConfigError } from '../agents/config.ts'
import { PeerStartError } from '../peer.ts'
import { suggest } from '../suggest.ts'
import { agentsCommand, agentsHelp } from './agents-command.ts'
import { UsageError } from './args.ts'
import { nodeCommand, nodeHelp } from './node-command.ts'
import { joinCommand, joinHelp } from './join-command.ts'
import { labCommand, labHelp } from './lab-command.ts'
import { peersCommand, peersHelp } from './peers-command.ts'
import { NetworkFileError } from '../../protocols/network/index.ts'
import { simCommand, simHelp } from './sim-command.ts'
import { runCommand, runHelp, submitCommand, submitHelp } from './task-commands.ts'
import { upCommand, upHelp } from './up.ts'
import { verifyCommand, verifyHelp } from './verify-command.ts'

const commands: Record<string, { run: (argv: string[]) => Promise<number>, help: string }> = {
  up: { run: upCommand, help: upHelp },
  node: { run: nodeCommand, help: nodeHelp },
  join: { run: joinCommand, help: joinHelp },
  peers: { run: peersCommand, help: peersHelp },
  agents: { run: agentsCommand, help: agentsHelp },
  run: { run: runCommand, help: runHelp },
  submit: { run: submitCommand, help: submitHelp },
  verify: { run: verifyCommand, help: verifyHelp },
  sim: { run: simCommand, help: simHelp },
  lab: { run: labCommand, help: labHelp }
}

const usage = `agentmesh — a peer-to-peer mesh of AI agents

  agentmesh up --peers N       run N local peers and show what they agree on
  agentmesh node               run one peer (join others with --bootstrap; --public for a public node)
  agentmesh join ADDR|NETWORK  join a network from anywhere, NAT included, and show progress
  agentmesh peers              a running peer's connections, reachability and DHT
  agentmesh agents             list the agents a running peer knows
  agentmesh run "<request>"    find an agent for a request and run it (--input JSON)
  agentmesh submit FILE        run a task DAG from YAML/JSON and explain every routing decision
  agentmesh verify CERT        check a consensus certificate offline (JSON or CBOR)
  agentmesh sim SCENARIO       simulate the mesh at scale (deterministic; report with plots)
  agentmesh lab                prove the open network in a namespaced NAT lab (Linux, root)
  agentmesh help COMMAND       details of one command`

export async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = rest[0] !== undefined ? commands[rest[0]] : undefined
    console.log(topic?.help ?? usage)
    return 0
  }
  const command = commands[name]
  if (command === undefined) {
    const guess = suggest(name, Object.keys(commands))
    console.error(`agentmesh: unknown command "${name}"${guess !== undefined ? ` — did you mean "${guess}"?` : ''}\n\n${usage}`)
    return 2
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.help)
    return 0
  }
  try {
    return await command.run(rest)
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError || err instanceof PeerStartError || err instanceof NetworkFileError) {
      console.error(`agentmesh ${err.message}`)
      return 2
    }
    throw err
  }
}
