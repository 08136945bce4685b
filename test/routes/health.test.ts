import { once } from 'node:events'
import { readdirSync, rmSync, writeFileSync } from 'node:fs'
import { connect, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { buildTestApp, KEY } from '../helpers/app.js'

const healthy = { status: 'ok', timestamp: String, version: /^\d+\.\d+\.\d+/, uptime_s: Number }

t.test('/health, /health/live and /health/ready answer the same shape', async (t) => {
  const { app } = await buildTestApp(t)
  for (const url of ['/health', '/health/live', '/health/ready']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200, url)
    t.match(res.json(), healthy, url)
    t.ok(!Number.isNaN(Date.parse(res.json().timestamp)), 'timestamp is a date')
  }
})

t.test('ready answers 503 with the reason when the cache directory cannot be created', async (t) => {
  const dir = t.testdir({})
  const blocker = join(dir, 'a-file')
  writeFileSync(blocker, 'not a directory')
  const { app } = await buildTestApp(t, { HF_HUB_CACHE: join(blocker, 'hub') })
  for (const url of ['/health/ready', '/health']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 503, url)
    t.match(res.json(), { status: 'unavailable', reason: /model cache directory cannot be created or written \(ENOTDIR\)/ })
    t.notMatch(res.body, /a-file/, 'no internal path in a public answer')
  }
  t.equal((await app.inject({ url: '/health/live' })).statusCode, 200, 'still alive')
})

t.test('ready creates the cache directory when it is missing', async (t) => {
  const dir = t.testdir({})
  const { app } = await buildTestApp(t, { HF_HUB_CACHE: join(dir, 'new', 'hub') })
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200)
})

t.test('the writability check adds nothing to the cache: huggingface_hub would warn about a probe file', async (t) => {
  const cache = join(t.testdir({}), 'hub')
  const { app } = await buildTestApp(t, { HF_HUB_CACHE: cache })
  for (const url of ['/health/ready', '/health', '/health/ready']) t.equal((await app.inject({ url })).statusCode, 200, url)
  t.same(readdirSync(cache), [], 'the cache root is as empty as it was')
})

t.test('every answer carries x-request-id, keeping a sane inbound one', async (t) => {
  // At debug, health requests are logged (at info they are not: see the next test).
  const { app, logs } = await buildTestApp(t, { LOG_LEVEL: 'debug' })
  const own = await app.inject({ url: '/health', headers: { 'x-request-id': 'n8n-run-42' } })
  t.equal(own.headers['x-request-id'], 'n8n-run-42')
  t.ok(logs().filter((line) => line.reqId === 'n8n-run-42').length >= 2, 'log lines of that request carry it')
  const made = await app.inject({ url: '/health' })
  t.match(made.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  const hostile = await app.inject({ url: '/health', headers: { 'x-request-id': 'evil\u0001"}{' } })
  t.match(hostile.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'an unsafe inbound id is replaced')
})

t.test('at LOG_LEVEL=info a probe writes no log line; a cache directory that stops being writable does, once', async (t) => {
  const dir = t.testdir({})
  const cache = join(dir, 'hub')
  const { app, logs } = await buildTestApp(t, { HF_HUB_CACHE: cache, HEALTH_CHECK_INTERVAL_MS: '20' })
  for (const url of ['/health', '/health/live', '/health/ready']) await app.inject({ url, headers: { 'x-request-id': 'probe-1' } })
  t.same(logs().filter((line) => line.reqId === 'probe-1'), [], 'no request lines for the probes')
  t.equal((await app.inject({ url: '/api/info', headers: { 'x-request-id': 'other-1' } })).statusCode, 401)
  t.ok(logs().some((line) => line.reqId === 'other-1'), 'other routes are logged as before')

  rmSync(cache, { recursive: true })
  writeFileSync(cache, 'not a directory')
  const warned = (): Array<Record<string, unknown>> => logs().filter((line) => line.level === 40 && /cache directory is not writable/.test(String(line.msg)))
  for (let i = 0; i < 100 && warned().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(warned().length, 1, 'one warning, not one per check')
  t.match(warned()[0], { reason: /\(ENOTDIR\)/ })
})

t.test('from the start of a graceful shutdown, the health checks say so in their own shape; other routes answer 503 MD_SHUTTING_DOWN', async (t) => {
  const { app } = await buildTestApp(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  // Each request is half sent when the shutdown begins, and finished after: it arrives during it.
  const urls = ['/health', '/health/ready', '/health/live', '/api/info']
  const sockets = await Promise.all(urls.map(async (url) => {
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write(`GET ${url} HTTP/1.1\r\nHost: modeldepot\r\nConnection: close\r\nAuthorization: Bearer ${KEY}\r\n`)
    let text = ''
    socket.on('data', (chunk: Buffer) => { text += chunk.toString() })
    return { socket, answered: once(socket, 'end').then(() => text) }
  }))
  // The half requests have reached the server: their connections are in use, not idle.
  await new Promise((resolve) => setTimeout(resolve, 200))
  const closed = app.close()
  // The listener stops taking connections as the shutdown begins.
  await new Promise((resolve) => setTimeout(resolve, 100))
  for (const { socket } of sockets) socket.write('\r\n')
  const [health, ready, live, info] = await Promise.all(sockets.map(async ({ answered }) => parseAnswer(await answered)))
  await closed
  for (const [url, answer] of [['/health', health], ['/health/ready', ready]] as const) {
    t.equal(answer!.status, 503, `${url}: not ready`)
    t.match(answer!.body, { ...healthy, status: 'unavailable', reason: 'the server is shutting down' }, `${url}: in the Health shape`)
  }
  t.equal(live!.status, 200, '/health/live: still alive while it drains')
  t.match(live!.body, healthy)
  t.equal(info!.status, 503)
  t.match(info!.body, { statusCode: 503, code: 'MD_SHUTTING_DOWN', message: /shutting down/ })
})

function parseAnswer (raw: string): { status: number, body: unknown } {
  const [head = '', body = ''] = raw.split('\r\n\r\n')
  return { status: Number(head.split(' ')[1]), body: JSON.parse(body) }
}
