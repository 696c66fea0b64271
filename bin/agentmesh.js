#!/usr/bin/env node
// A plain-JS entry so an old Node says what to do instead of failing on TypeScript syntax.
const major = Number(process.versions.node.split('.')[0])
if (major < 24) {
  console.error(`agentmesh needs Node 24 or newer; this is ${process.version}. ` +
    'Run it through npm, which uses the project\'s own Node 24: `npm start`, `npx agentmesh …` or `npm run agentmesh -- …`.')
  process.exit(1)
}
// V8's on-disk code cache: `up` starts N processes that load the same libp2p modules.
const { enableCompileCache } = await import('node:module')
enableCompileCache?.()
const { main } = await import('../node/cli/main.ts')
process.exitCode = await main(process.argv.slice(2))
// Stray handles (a lingering socket or timer) must not keep a finished command alive.
setTimeout(() => process.exit(), 2000).unref()
