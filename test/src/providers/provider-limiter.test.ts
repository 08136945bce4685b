import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { LimiterConnection, lostKeys, ProviderLimiter } from '../../../src/providers/provider-limiter.js'
import { startRedisServer } from '../../helpers/redis-server.js'

// The app's client options (plugins/redis.ts): no offline queue, so a command fails at once without Redis.
function appClient (url: string): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 2000,
    connectTimeout: 2000,
    retryStrategy: (n) => Math.min(n * 100, 2000)
  })
  redis.on('error', () => {})
  return redis
}

async function ready (redis: Redis): Promise<void> {
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve))
}

/** Two "replicas": two clients, each with its own limiter on the same id. */
async function twoLimiters (t: Test, url: string, settings: { maxConcurrent: number, minTime: number }) {
  const made = [appClient(url), appClient(url)]
  await Promise.all(made.map(ready))
  const limiters = made.map((redis) => {
    const connection = new LimiterConnection(redis)
    const warnings: string[] = []
    const limiter = new ProviderLimiter(settings, { connection, id: 'test:provider:x', warn: (message) => warnings.push(message) })
    t.teardown(async () => {
      await limiter.stop()
      connection.close()
      redis.disconnect()
    })
    return { limiter, connection, warnings }
  })
  await Promise.all(limiters.map(async ({ connection }) => ready(connection.client)))
  return limiters
}

// What a fake upstream would see: when each call started and ended, and the most at once.
function upstream (holdMs: number) {
  const calls: Array<{ start: number, end: number }> = []
  let inFlight = 0
  let peak = 0
  const call = async (): Promise<number> => {
    inFlight++
    peak = Math.max(peak, inFlight)
    const record = { start: Date.now(), end: 0 }
    calls.push(record)
    await sleep(holdMs)
    record.end = Date.now()
    inFlight--
    return calls.length
  }
  return { call, calls, peak: () => peak }
}

t.test('lostKeys knows the error Redis 7 answers once Bottleneck\'s keys are gone', async (t) => {
  t.ok(lostKeys(new Error('ERR SETTINGS_KEY_NOT_FOUND')))
  t.ok(lostKeys(new Error('ERR UNKNOWN_CLIENT')))
  t.notOk(lostKeys(new Error('ECONNREFUSED')))
  t.notOk(lostKeys('SETTINGS_KEY_NOT_FOUND'))
})

t.test('without a cluster, the limiter is the local Bottleneck: the task\'s answer and error come back', async (t) => {
  const limiter = new ProviderLimiter({ maxConcurrent: 1, minTime: 0 })
  t.teardown(async () => limiter.stop())
  t.equal(await limiter.schedule(async () => 42), 42)
  await t.rejects(limiter.schedule(async () => { throw new Error('upstream broke') }), { message: 'upstream broke' })
  t.same(limiter.counts(), { queued: 0, running: 0 })
  t.equal(limiter.clustered, false)
})

t.test('maxConcurrent holds across two limiters on one Redis', async (t) => {
  const redis = await startRedisServer(t)
  const [a, b] = await twoLimiters(t, redis.url, { maxConcurrent: 2, minTime: 0 })
  const fake = upstream(150)
  await Promise.all(Array.from({ length: 8 }, async (_, i) => (i % 2 === 0 ? a! : b!).limiter.schedule(fake.call)))
  t.equal(fake.calls.length, 8, 'every call ran once')
  t.equal(fake.peak(), 2, 'never more than maxConcurrent at once, whichever limiter sent them')
})

t.test('minTime holds across two limiters on one Redis', async (t) => {
  const redis = await startRedisServer(t)
  const [a, b] = await twoLimiters(t, redis.url, { maxConcurrent: 10, minTime: 300 })
  const fake = upstream(0)
  await Promise.all(Array.from({ length: 6 }, async (_, i) => (i % 2 === 0 ? a! : b!).limiter.schedule(fake.call)))
  const starts = fake.calls.map((call) => call.start).sort((x, y) => x - y)
  const gaps = starts.slice(1).map((start, i) => start - starts[i]!)
  // Generous tolerance: timers on a busy machine fire late, never early by much.
  t.ok(gaps.every((gap) => gap >= 200), `starts at least minTime apart (gaps ${gaps.join(', ')} ms)`)
})

t.test('after FLUSHALL the limiter re-creates its keys by itself and goes on limiting', async (t) => {
  const redis = await startRedisServer(t)
  const [a, b] = await twoLimiters(t, redis.url, { maxConcurrent: 1, minTime: 0 })
  const fake = upstream(50)
  t.equal(await a!.limiter.schedule(fake.call), 1)
  t.equal(await redis.command('FLUSHALL'), '+OK')
  // The first calls after the loss still get their answer (run by the local limiter meanwhile)…
  const answers = await Promise.all([a!.limiter.schedule(fake.call), b!.limiter.schedule(fake.call)])
  t.equal(answers.length, 2)
  t.ok(a!.warnings.some((w) => w.includes('re-created')) || b!.warnings.some((w) => w.includes('re-created')), 'the re-creation is logged')
  // …and within seconds both limiters are clustered again: the keys are back, and the limit holds.
  const deadline = Date.now() + 10_000
  while (await redis.command('EXISTS', 'b_test:provider:x_settings') !== ':1' && Date.now() < deadline) await sleep(100)
  t.equal(await redis.command('EXISTS', 'b_test:provider:x_settings'), ':1', 'the settings key is written again')
  const after = upstream(100)
  await Promise.all(Array.from({ length: 6 }, async (_, i) => (i % 2 === 0 ? a! : b!).limiter.schedule(after.call)))
  t.equal(after.calls.length, 6)
  t.equal(after.peak(), 1, 'maxConcurrent holds across both again')
})

t.test('FLUSHALL in the middle of a run: no call is lost or run twice', async (t) => {
  const redis = await startRedisServer(t)
  const [a, b] = await twoLimiters(t, redis.url, { maxConcurrent: 2, minTime: 10 })
  const fake = upstream(30)
  const calls = Array.from({ length: 30 }, async (_, i) => (i % 2 === 0 ? a! : b!).limiter.schedule(fake.call))
  await sleep(150)
  t.equal(await redis.command('FLUSHALL'), '+OK')
  const results = await Promise.allSettled(calls)
  t.ok(results.every((result) => result.status === 'fulfilled'), 'every call answered')
  t.equal(fake.calls.length, 30, 'each task ran exactly once')
})

t.test('Redis away: a call goes through the local limiter at once, neither hanging nor failing', async (t) => {
  const redis = await startRedisServer(t)
  const [a] = await twoLimiters(t, redis.url, { maxConcurrent: 1, minTime: 0 })
  const fake = upstream(10)
  t.equal(await a!.limiter.schedule(fake.call), 1)
  await redis.stop()
  await sleep(100)
  t.equal(await a!.limiter.schedule(fake.call), 2, 'answered without Redis')
  await t.rejects(a!.limiter.schedule(async () => { throw new Error('upstream broke') }), { message: 'upstream broke' }, 'the task\'s own error still comes back')
  // Back, and empty (as after a restart without persistence): clustered again by itself.
  await redis.start()
  await ready(a!.connection.client)
  const deadline = Date.now() + 10_000
  let answer = 0
  while (Date.now() < deadline) {
    answer = await a!.limiter.schedule(fake.call)
    if (await redis.command('EXISTS', 'b_test:provider:x_settings') === ':1') break
    await sleep(200)
  }
  t.equal(await redis.command('EXISTS', 'b_test:provider:x_settings'), ':1', 'the limiter is on Redis again')
  t.ok(answer > 2)
})

t.test('a call queued in Redis for capacity when Redis goes away is run locally instead of waiting', async (t) => {
  const redis = await startRedisServer(t)
  const [a, b] = await twoLimiters(t, redis.url, { maxConcurrent: 1, minTime: 0 })
  const release = { go: (): void => {} }
  const holding = a!.limiter.schedule(async () => new Promise<void>((resolve) => { release.go = resolve }))
  await sleep(200)
  const queued = b!.limiter.schedule(async () => 'ran')
  await sleep(200)
  await redis.stop()
  t.equal(await queued, 'ran', 'the queued call ran on its replica\'s own limiter')
  release.go()
  await holding.catch(() => {})
})
