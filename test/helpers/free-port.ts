import { once } from 'node:events'
import { createServer } from 'node:net'

/**
 * A loopback port free at this moment, for a server the test starts itself (redis-server, tinyproxy).
 * Another process may take it before that server binds it: the helpers retry on "address in use".
 */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  await once(server, 'close')
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}
