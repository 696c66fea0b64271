/**
 * Entry point of the rogue process (forked by the harness with an IPC channel): starts the rogue
 * peer in the data directory given as argv[2], then dials and attacks on command. It exits when
 * told to, or when its parent goes away.
 */
import type { AttackReport, RogueCommand, RogueReply } from './protocol.ts'
import { startRogue, type Rogue } from './rogue.ts'
import { attacks } from './attacks.ts'

const send = (m: RogueReply): void => { process.send?.(m) }

async function main (): Promise<void> {
  const [dataDir, networkFile] = process.argv.slice(2)
  if (dataDir === undefined || networkFile === undefined) throw new Error('usage: rogue-process.ts <data dir> <network file>')
  const rogue: Rogue = await startRogue(dataDir, networkFile)
  let stopping = false
  const stop = async (): Promise<void> => {
    if (stopping) return
    stopping = true
    await rogue.peer.stop().catch(() => {})
    process.exit(0)
  }
  process.on('disconnect', () => { void stop() })
  process.on('SIGTERM', () => { void stop() })
  process.on('SIGINT', () => {}) // Ctrl-C reaches the whole group; the harness decides
  process.on('message', (m: RogueCommand) => {
    if (m.type === 'stop') void stop()
    if (m.type === 'dial') void rogue.peer.dial(m.addrs).then(failures => { send({ type: 'dialed', failures }) })
    if (m.type === 'attack') {
      void attacks[m.attack]({ rogue, targets: m.targets, settings: m.settings, until: Date.now() + m.durationMs })
        .then(t => t.report(), (err: Error): AttackReport => ({ sent: 0, sendErrors: 0, firstAttackAt: null, detail: { error: err.message } }))
        .then(report => { send({ type: 'attacked', report }) })
    }
  })
  send({ type: 'ready', peerId: rogue.peer.peerId, multiaddrs: rogue.peer.multiaddrs() })
}

// Whatever an attack stirs up inside the rogue's own stack must not end the rogue.
process.on('uncaughtException', err => { process.stderr.write(`rogue: ${err.stack ?? err.message}\n`) })
process.on('unhandledRejection', err => { process.stderr.write(`rogue: ${String(err)}\n`) })
main().catch((err: Error) => { send({ type: 'fatal', message: err.message }); process.exit(1) })
