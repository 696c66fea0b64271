/**
 * What a Prometheus scrape costs a peer whose table holds 100k VCVs: GET /metrics through the
 * real API (HTTP on loopback, one kept-alive connection, as a scraper does), p50 and p99 over 200
 * scrapes, against the same peer's scrapes with only its own agents (measured first, same run).
 * Every count a scrape reports is kept as things happen, so the ratio should stay near 1.
 *
 * Data: 3125 hosts × 32 agents (the default per-host quota) = 100k signed VCVs (quick: 10k),
 * loaded through the table's public `restore` (each record decoded and its signature verified,
 * as at a restart). The index then catches up in the background at its CPU share, as it would
 * after a restart: the scrapes run while it does, so their latency includes its event-loop slices;
 * a third series runs once it has caught up (the steady state).
 * The peer embeds with 16-dim hash vectors (the scrape reads only the index's size). The run
 * takes minutes: stopping the peer waits for the index, which takes ~1 s per 500 agents.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { Agent, get } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { HashEmbedder } from '../../capability-index/index.ts'
import { startApi } from '../../node/api/api.ts'
import { defaultAgentSpecs } from '../../node/agents/registry.ts'
import { ed25519Signer } from '../../node/network/crypto.ts'
import { startPeer } from '../../node/peer.ts'
import { signCalculator } from './adversary/records.ts'
import type { Bench, BenchResult } from '../bench.ts'

const AGENTS_PER_HOST = 32
const SCRAPES = 200
/** Scrapes before each timed series: connection set-up and JIT are not what is measured. */
const WARMUP = 20
const TTL_MS = 60 * 60_000

/** `n` VCVs signed by their hosts: skills and cost of the demo calculator, a description each. */
async function signedRecords (n: number): Promise<Uint8Array[]> {
  const records: Uint8Array[] = []
  for (let h = 0; records.length < n; h++) {
    const signer = ed25519Signer(await generateKeyPair('Ed25519'))
    for (let i = 0; i < AGENTS_PER_HOST && records.length < n; i++) {
      records.push(signCalculator(signer, `calc-${i}`, 1, `calculator ${h}-${i}: evaluates arithmetic expressions, variant ${(h * 31 + i) % 97}`, TTL_MS).wire)
    }
  }
  return records
}

async function scrape (url: string, agent: Agent): Promise<string> {
  return await new Promise((resolve, reject) => {
    get(`${url}/metrics`, { agent }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => { res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /metrics answered ${res.statusCode}`)) })
    }).on('error', reject)
  })
}

/** Sorted scrape times (ms) over one kept-alive connection, opened for this series. */
async function scrapeTimes (url: string): Promise<number[]> {
  // A new agent per series: the API closes connections idle for 5 s, as during the table's fill.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const times: number[] = []
  try {
    for (let i = 0; i < WARMUP + SCRAPES; i++) {
      const started = performance.now()
      await scrape(url, agent)
      if (i >= WARMUP) times.push(performance.now() - started)
    }
  } finally {
    agent.destroy()
  }
  return times.sort((a, b) => a - b)
}


const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

export const metricsBench: Bench = async ({ quick }) => {
  const n = quick ? 10_000 : 100_000
  const dir = await mkdtemp(join(tmpdir(), 'agentmesh-bench-metrics-'))
  const peer = await startPeer({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], agents: defaultAgentSpecs(), embedder: new HashEmbedder({ dims: 16 }), lone: true })
  const api = await startApi(peer, { port: 0 })
  try {
    const small = await scrapeTimes(api.url)
    // The peer's own agents and the records fill the table to exactly n (its default capacity at 100k).
    peer.capability.restore(await signedRecords(n - peer.metrics.table.agents))
    const held = peer.metrics.table.agents
    if (held !== n || peer.capability.agents().length !== n) throw new Error(`the table holds ${held} agents, not ${n}`)
    const big = await scrapeTimes(api.url)
    const agent = new Agent()
    const bytes = (await scrape(api.url, agent)).length
    agent.destroy()
    process.stderr.write(`metrics bench: ${held} agents in the table, ${peer.index.size} indexed while scraping; exposition ${bytes} bytes\n`)
    // The same scrapes once the index has caught up: the steady state of a peer running for weeks.
    await peer.whenIndexed()
    const steady = await scrapeTimes(api.url)
    const row = (metric: string, value: number, base: number): BenchResult =>
      ({ bench: 'metrics', metric, value, unit: 'ms', baseline: 'own-agents-only', baselineValue: base, ratio: value / base })
    return [
      row(`scrape-p50-${n / 1000}k`, quantile(big, 0.5), quantile(small, 0.5)),
      row(`scrape-p99-${n / 1000}k`, quantile(big, 0.99), quantile(small, 0.99)),
      row(`scrape-p50-${n / 1000}k-indexed`, quantile(steady, 0.5), quantile(small, 0.5)),
      row(`scrape-p99-${n / 1000}k-indexed`, quantile(steady, 0.99), quantile(small, 0.99))
    ]
  } finally {
    await api.close()
    await peer.stop()
    await rm(dir, { recursive: true, force: true })
  }
}
