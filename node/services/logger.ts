/**
 * The peer's component logger (libp2p's `logger` component): every service logs through it. Debug
 * lines go to libp2p's usual `DEBUG=agentmesh:*` output. An error of one of our own services
 * (`agentmesh:*`: something the peer failed to do that an operator must hear of, say a certificate
 * log it could not compact) also goes to `warn`, so it is never silent; routine trouble (a peer
 * that went away) is logged plainly. libp2p's own components log errors that are routine on an
 * open network (failed dials) and keep to DEBUG.
 *
 * @example
 * ```ts
 * createLibp2p({ logger: peerLogger((component, message) => log.warn({ component }, message)), services: { … } })
 * ```
 */
import { format } from 'node:util'
import { defaultLogger } from '@libp2p/logger'
import type { ComponentLogger, Logger } from '@libp2p/interface'

export type Warn = (component: string, message: string) => void

/** Node's process warning, as the peer said such things before it had a logger. */
const processWarning: Warn = (component, message) => { process.emitWarning(`${component}: ${message}`) }

export function peerLogger (warn: Warn = processWarning): ComponentLogger {
  const base = defaultLogger()
  const wrap = (name: string, log: Logger): Logger => {
    if (!name.startsWith('agentmesh:')) return log
    const error = (formatter: unknown, ...args: unknown[]): void => {
      log.error(formatter, ...args)
      // libp2p's own formats (%e an error, %p a peer id, %a an address) as plain text.
      try { warn(name, format(String(formatter).replace(/%[epatbc]/g, '%s'), ...args.map(a => a instanceof Error ? a.message : a))) } catch {}
    }
    return Object.assign((formatter: unknown, ...args: unknown[]) => { log(formatter, ...args) }, {
      error,
      trace: log.trace,
      enabled: log.enabled,
      newScope: (scope: string) => wrap(`${name}:${scope}`, log.newScope(scope))
    })
  }
  return { forComponent: name => wrap(name, base.forComponent(name)) }
}
