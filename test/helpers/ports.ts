// A port nothing listens on right now on 127.0.0.1 (the OS picks it); another process may still
// take it before the caller binds it, so callers retry on "already in use".
import { createServer } from 'node:net'

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}
