/**
 * Gossipsub's metrics interface (gauges with collect hooks, histograms, avg/min/max) over a
 * prom-client registry. Gossipsub labels some metrics with raw topic strings, and any peer may
 * subscribe to any topic: here a topic label is one of this network's topics or "other", so a
 * peer inventing topics cannot add time series.
 */
import { Gauge, Histogram, type Registry } from 'prom-client'
import type { GossipMetrics } from '../network/gossip.ts'

type Labels = Record<string, string | number>
interface Config { name: string, help: string, labelNames?: string[], buckets?: number[] }

const TOPIC_LABELS = new Set(['topic', 'topicStr'])

export function gossipsubRegister (registry: Registry, topics: Record<string, string>): GossipMetrics {
  const known = new Set([...Object.keys(topics), ...Object.values(topics)])
  const bound = (labels: Labels): Labels => {
    let out = labels
    for (const key of Object.keys(labels)) {
      if (TOPIC_LABELS.has(key) && !known.has(String(labels[key]))) out = { ...out, [key]: 'other' }
    }
    return out
  }
  // Gossipsub calls inc(value) / set(value) without labels, and inc(labels, value) with.
  const withLabels = (apply: (labels: Labels | undefined, value: number | undefined) => void) =>
    (a?: Labels | number, b?: number): void => { typeof a === 'object' ? apply(bound(a), b) : apply(undefined, a) }
  const register = {
    gauge (config: Config) {
      const collectors: Array<(g: unknown) => void> = []
      const gauge = new Gauge({ name: config.name, help: config.help, labelNames: config.labelNames ?? [], registers: [registry], collect () { for (const c of collectors) c(wrapper) } })
      const wrapper = {
        inc: withLabels((labels, value) => { labels === undefined ? gauge.inc(value ?? 1) : gauge.inc(labels, value ?? 1) }),
        set: withLabels((labels, value) => { labels === undefined ? gauge.set(value ?? 0) : gauge.set(labels, value ?? 0) }),
        addCollect (fn: (g: unknown) => void) { collectors.push(fn) }
      }
      return wrapper
    },
    histogram (config: Config) {
      const histogram = new Histogram({ name: config.name, help: config.help, labelNames: config.labelNames ?? [], buckets: config.buckets, registers: [registry] })
      return {
        startTimer: () => histogram.startTimer(),
        observe: withLabels((labels, value) => { labels === undefined ? histogram.observe(value ?? 0) : histogram.observe(labels, value ?? 0) }),
        reset: () => { histogram.reset() }
      }
    },
    avgMinMax (config: Config) {
      const gauges = (['avg', 'min', 'max'] as const).map(stat => new Gauge({ name: `${config.name}_${stat}`, help: `${config.help} (${stat})`, labelNames: config.labelNames ?? [], registers: [registry] }))
      return {
        set (a: Labels | number[], b?: number[]) {
          const labels = Array.isArray(a) ? undefined : bound(a)
          const values = (Array.isArray(a) ? a : b) ?? []
          const stats = values.length === 0 ? [0, 0, 0] : [values.reduce((s, v) => s + v, 0) / values.length, Math.min(...values), Math.max(...values)]
          gauges.forEach((g, i) => { labels === undefined ? g.set(stats[i]!) : g.set(labels, stats[i]!) })
        }
      }
    }
  }
  return { register: register as unknown as GossipMetrics['register'], topicLabels: new Map(Object.entries(topics)) }
}
