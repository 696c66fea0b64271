/**
 * CPU per VCV delivery through gossip, with agentmesh's gossipsub settings (unsigned gossip,
 * content-addressed message ids, fast-id dedup) against gossipsub's defaults (every message signed
 * by the gossip layer and verified again on each receipt, duplicates included).
 *
 * N peers in this process over TCP loopback; each round every peer re-advertises all its agents
 * (a new signed version each), and the round ends when every peer holds every new version. CPU is
 * process CPU (user + system) over all rounds divided by the deliveries (records × (N − 1)).
 * The two settings alternate, several times, and the median is reported.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultAgentSpecs } from '../../node/agents/registry.ts'
import type { GossipProfile } from '../../node/network/gossip.ts'
import { connectRing, untilTables } from '../../node/cli/local-mesh.ts'
import { startPeer, toLocalAgent, type Peer } from '../../node/peer.ts'
import type { Bench } from '../bench.ts'

interface Sample { cpuUsPerDelivery: number, deliveriesPerSecond: number }

async function measure (profile: GossipProfile, peersCount: number, rounds: number): Promise<Sample> {
  const dir = await mkdtemp(join(tmpdir(), 'agentmesh-bench-'))
  const peers: Peer[] = []
  try {
    for (let i = 0; i < peersCount; i++) {
      peers.push(await startPeer({ dataDir: join(dir, `p${i}`), listen: ['/ip4/127.0.0.1/tcp/0'], agents: defaultAgentSpecs(), gossipProfile: profile }))
    }
    const agentsPerPeer = defaultAgentSpecs().length
    const total = peersCount * agentsPerPeer
    await connectRing(peers)
    await untilTables(peers, () => peers.every(p => p.capability.agents().length === total), 30_000)
    // Let the gossip mesh settle (first heartbeats) so rounds measure steady state.
    await new Promise(resolve => setTimeout(resolve, 1500))
    const cpu = process.cpuUsage()
    const started = performance.now()
    for (let round = 0; round < rounds; round++) {
      const target = new Map<string, number>()
      for (const p of peers) {
        for (const agent of p.agents.values()) p.capability.advertise(toLocalAgent(agent))
        for (const v of p.capability.agents()) if (v.body.agent.startsWith(p.peerId)) target.set(v.body.agent, v.body.version)
      }
      await untilTables(peers, () => peers.every(p => p.capability.agents().every(v => v.body.version >= (target.get(v.body.agent) ?? 0))), 60_000)
    }
    const used = process.cpuUsage(cpu)
    const seconds = (performance.now() - started) / 1000
    const deliveries = rounds * total * (peersCount - 1)
    return { cpuUsPerDelivery: (used.user + used.system) / deliveries, deliveriesPerSecond: deliveries / seconds }
  } finally {
    await Promise.all(peers.map(async p => { await p.stop() }))
    await rm(dir, { recursive: true, force: true })
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

export const gossipBench: Bench = async ({ quick }) => {
  const peersCount = 8
  const rounds = quick ? 5 : 20
  const repeats = quick ? 1 : 3
  const ours: Sample[] = []
  const defaults: Sample[] = []
  for (let i = 0; i < repeats; i++) {
    ours.push(await measure('agentmesh', peersCount, rounds))
    defaults.push(await measure('default', peersCount, rounds))
  }
  const cpu = median(ours.map(s => s.cpuUsPerDelivery))
  const cpuBase = median(defaults.map(s => s.cpuUsPerDelivery))
  const rate = median(ours.map(s => s.deliveriesPerSecond))
  const rateBase = median(defaults.map(s => s.deliveriesPerSecond))
  return [
    { bench: 'gossip', metric: 'cpu-per-delivery', value: cpu, unit: 'us', baseline: 'gossipsub-defaults', baselineValue: cpuBase, ratio: cpu / cpuBase },
    { bench: 'gossip', metric: 'deliveries-per-second', value: rate, unit: 'deliveries/s', baseline: 'gossipsub-defaults', baselineValue: rateBase, ratio: rate / rateBase }
  ]
}
