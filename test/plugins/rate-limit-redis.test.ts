import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { auth, buildTestApp, type TestApp } from '../helpers/app.js'
import { startRedisServer } from '../helpers/redis-server.js'

// Two replicas (two apps) on one real redis-server: one budget per client whichever answers, a burst
// gets exactly the budget, and with Redis away requests go through, readiness says why, and the
// shared limit comes back with Redis.

const info = async (app: FastifyInstance): Promise<LightMyRequestResponse> => app.inject({ url: '/api/info', headers: auth() })

async function waitForReadiness (app: FastifyInstance, status: number): Promise<LightMyRequestResponse> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const res = await app.inject({ url: '/health/ready' })
    if (res.statusCode === status || Date.now() > deadline) return res
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function replicas (t: Test, env: Record<string, string>): Promise<[TestApp, TestApp]> {
  const a = await buildTestApp(t, env)
  const b = await buildTestApp(t, env)
  for (const { app } of [a, b]) t.equal((await waitForReadiness(app, 200)).statusCode, 200, 'ready once Redis is connected')
  return [a, b]
}

t.test('requests alternating between two replicas share one budget', async (t) => {
  const redis = await startRedisServer(t)
  const [a, b] = await replicas(t, { REDIS_URL: redis.url, RATE_LIMIT_PER_MINUTE: '4' })
  const remaining: string[] = []
  for (const { app } of [a, b, a, b]) {
    const res = await info(app)
    t.equal(res.statusCode, 200)
    t.equal(res.headers['x-ratelimit-limit'], '4')
    remaining.push(String(res.headers['x-ratelimit-remaining']))
  }
  t.same(remaining, ['3', '2', '1', '0'], 'x-ratelimit-remaining counts down across both')
  for (const [name, { app }] of [['A', a], ['B', b]] as const) {
    const limited = await info(app)
    t.equal(limited.statusCode, 429, `past the budget on ${name}`)
    t.ok(Number(limited.headers['retry-after']) > 0, 'with Retry-After')
    t.match(limited.json(), { code: 'MD_RATE_LIMITED' })
  }
  t.match(await redis.command('KEYS', 'modeldepot:rate-limit:*'), /^\*1$/, 'one counter, under REDIS_KEY_PREFIX')
})

t.test('a burst across both replicas gets exactly the budget', async (t) => {
  const redis = await startRedisServer(t)
  const limit = 20
  const [a, b] = await replicas(t, { REDIS_URL: redis.url, RATE_LIMIT_PER_MINUTE: String(limit), REDIS_KEY_PREFIX: 'cluster-2:' })
  const answers = await Promise.all(Array.from({ length: 200 }, async (_, i) => info((i % 2 === 0 ? a : b).app)))
  const statuses = answers.reduce<Record<number, number>>((counts, res) => ({ ...counts, [res.statusCode]: (counts[res.statusCode] ?? 0) + 1 }), {})
  t.same(statuses, { 200: limit, 429: 200 - limit })
  const left = answers.filter((res) => res.statusCode === 200).map((res) => Number(res.headers['x-ratelimit-remaining'])).sort((x, y) => x - y)
  t.same(left, Array.from({ length: limit }, (_, i) => i), 'each request that got through saw its own count')
  t.match(await redis.command('KEYS', 'cluster-2:rate-limit:*'), /^\*1$/, 'the counter is under the prefix set')
})

t.test('Redis away: requests go through, readiness is 503 and the log says why; back, the shared limit applies again', async (t) => {
  const redis = await startRedisServer(t)
  const [a, b] = await replicas(t, { REDIS_URL: redis.url, RATE_LIMIT_PER_MINUTE: '3' })
  await redis.stop()
  const ready = await waitForReadiness(a.app, 503)
  t.equal(ready.statusCode, 503, 'not ready')
  t.match(ready.json(), { status: 'unavailable', reason: /Redis \(REDIS_URL\) is not connected/ })
  t.equal((await b.app.inject({ url: '/health' })).statusCode, 200, '/health stays 200')
  t.equal((await b.app.inject({ url: '/health/live' })).statusCode, 200, 'and liveness')

  const started = Date.now()
  for (let i = 0; i < 6; i++) t.equal((await info(i % 2 === 0 ? a.app : b.app)).statusCode, 200, 'let through past the budget')
  t.ok(Date.now() - started < 2000, 'without waiting for Redis')
  const outage = a.logs().filter((line) => line.component === 'rate-limit')
  t.equal(outage.length, 1, 'logged once for the outage, not per request')
  t.match(outage[0], { level: 40, msg: /rate limit store unavailable: requests are let through/ })
  t.ok(a.logs().some((line) => line.component === 'redis' && /Redis is unreachable/.test(String(line.msg))), 'the client says Redis is unreachable')

  await redis.start()
  for (const { app } of [a, b]) t.equal((await waitForReadiness(app, 200)).statusCode, 200, 'ready again')
  t.same([(await info(a.app)).statusCode, (await info(b.app)).statusCode, (await info(a.app)).statusCode, (await info(b.app)).statusCode], [200, 200, 200, 429],
    'the shared budget applies again (Redis came back empty: a fresh one)')
  t.ok(a.logs().some((line) => line.component === 'rate-limit' && /answers again/.test(String(line.msg))), 'the recovery is logged')
})

t.test('Redis unreachable at start-up: the app starts, requests fail fast, readiness is 503, and it connects when Redis comes', async (t) => {
  const redis = await startRedisServer(t)
  await redis.stop()
  const { app, logs } = await buildTestApp(t, { REDIS_URL: redis.url, RATE_LIMIT_PER_MINUTE: '2' })
  t.equal((await info(app)).statusCode, 200)
  // A command that waited for Redis would have failed only at its 2 s timeout (plugins/redis.ts),
  // "Command timed out"; one refused at once (no offline queue) says the connection is not writable.
  const refused = logs().find((line) => /rate limit store unavailable/.test(String(line.msg)))
  t.match((refused?.err as { message?: string } | undefined)?.message, /isn't writeable|enableOfflineQueue|Connection is closed/, 'the request did not wait for Redis: the command was refused at once')
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503)
  t.equal((await app.inject({ url: '/health' })).statusCode, 200)
  await redis.start()
  t.equal((await waitForReadiness(app, 200)).statusCode, 200, 'connected once Redis answers')
  t.same([(await info(app)).statusCode, (await info(app)).statusCode, (await info(app)).statusCode], [200, 200, 429])
})

t.test('the Redis password is never shown or logged', async (t) => {
  const password = 'redis-s3cret-password-4242'
  const redis = await startRedisServer(t, { password })
  const { app, rawLogs } = await buildTestApp(t, { REDIS_URL: redis.url, LOG_LEVEL: 'trace' })
  t.equal((await waitForReadiness(app, 200)).statusCode, 200, 'connected with the password')
  const res = await info(app)
  t.equal(res.json().settings.redis_url, `redis://:****@127.0.0.1:${redis.port}`, '/api/info masks it')
  await redis.stop()
  await waitForReadiness(app, 503)
  await info(app)
  const logs = rawLogs()
  t.ok(logs.includes(`redis://:****@127.0.0.1:${redis.port}`), 'the logs name the URL, masked')
  t.notOk(logs.includes(password) || res.body.includes(password), 'nowhere the password')
})

t.test('without REDIS_URL, nothing changes: in memory, and /api/info says so', async (t) => {
  const { app } = await buildTestApp(t, { RATE_LIMIT_PER_MINUTE: '2' })
  t.equal(app.redis, undefined)
  t.equal((await info(app)).json().settings.redis_url, null)
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200)
})
