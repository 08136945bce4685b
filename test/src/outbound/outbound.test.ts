import { once } from 'node:events'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { Outbound } from '../../../src/outbound/outbound-dispatcher.js'

// Issue 18, idle RSS: undici (110 modules, 1.1 MB of source) is loaded by the first outbound request,
// not when the app is built; what goes out still goes through the one dispatcher (the proxy's tests
// send through tinyproxy: test/routes/outbound-proxy.test.ts).

const undiciLoaded = (): boolean => Object.keys(createRequire(import.meta.url).cache).some((file) => file.includes('/node_modules/undici/'))

t.test('undici is loaded by the first request, and one dispatcher serves every request after it', async (t) => {
  const server = createServer((request, response) => response.end(`${request.method ?? ''} ${request.url ?? ''}`))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const unused = new Outbound({ httpProxy: undefined, httpsProxy: undefined, noProxy: undefined })
  await unused.close()
  t.notOk(undiciLoaded(), 'made and closed without a request: undici is not loaded')

  const outbound = new Outbound({ httpProxy: undefined, httpsProxy: undefined, noProxy: undefined })
  t.teardown(async () => outbound.close())
  const answer = await outbound.request(`${url}/first`)
  t.equal(await answer.body.text(), 'GET /first')
  t.ok(undiciLoaded(), 'loaded by the first request')
  const dispatcher = outbound.dispatcher
  t.equal(await (await outbound.fetch(`${url}/second`)).text(), 'GET /second', 'fetch goes out the same way')
  t.equal(outbound.dispatcher, dispatcher, 'the same dispatcher')
})
