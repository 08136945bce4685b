import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { FakeProvider, type ProviderRequest } from '../fakes/fake-providers.js'
import { TOKENS } from '../helpers/providers.js'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { startReplicas, type Replica } from '../helpers/replicas.js'

// Issue 16, point 7: each provider's Bottleneck limiter is clustered on Redis, so its maxConcurrent
// and minTime hold for three server processes together, as the fake upstream measures them; a
// PROVIDERS_FILE that overrides the limiter still applies; a FLUSHALL in the middle of a run (which
// leaves plain Bottleneck failing with ERR SETTINGS_KEY_NOT_FOUND forever) is recovered from within
// seconds; and with Redis stopped a provider call neither hangs nor fails.

t.setTimeout(240_000)

const MIN_TIME_MS = 500
// Bottleneck spaces the starts of the calls; the fake sees them after each replica's event loop and
// socket, which on a busy two-core machine adds a few hundred ms to one and nothing to the next (a CI
// run saw gaps of 621 then 151 ms: one request 350 ms late, the next on time): a generous margin for
// any one gap. Three replicas limited each on its own would send with gaps near 0. The schedule as a
// whole is held to minTime more tightly: the i-th request reaches the upstream no sooner than i
// minTimes after the first, less the same margin, as one late request cannot move the later ones
// earlier.
const TOLERANCE_MS = 400

const redis = await startRedisServer(t)
const openai = await FakeProvider.start({ kind: 'openai', tokens: [TOKENS.openai], delayMs: 100 })
t.teardown(async () => openai.close())
const dir = mkdtempSync(join(tmpdir(), 'modeldepot-providers-file-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const providersFile = join(dir, 'providers.json')
writeFileSync(providersFile, JSON.stringify([{ name: 'openai', limiter: { max_concurrent: 1, min_time_ms: MIN_TIME_MS } }]))
const { replicas, add } = await startReplicas(t, ['a', 'b', 'c'], {
  REDIS_URL: redis.url,
  OPENAI_BASE_URL: openai.url,
  OPENAI_API_KEY: TOKENS.openai,
  PROVIDERS_FILE: providersFile
})

/** Every replica's limiter has registered with Bottleneck's keys in Redis (a client each). */
async function limitersRegistered (server: RedisServer, count = replicas.length): Promise<void> {
  // Generous: three processes that start beside the other test files on two cores take a while.
  const deadline = Date.now() + 60_000
  const registered = async (): Promise<number> => Number((await server.command('ZCARD', 'b_modeldepot:provider:openai_client_last_seen').catch(() => ':0')).slice(1))
  while (await registered() < count) {
    if (Date.now() > deadline) throw new Error('the limiters never registered in Redis')
    await sleep(100)
  }
}

/** Three preflight checks per replica at once: each sends two requests to the upstream, one after the other. */
async function burst (among: Replica[] = replicas): Promise<Array<{ replica: string, status: number }>> {
  const calls = among.flatMap((replica: Replica) => [1, 2, 3].map(async () => ({ replica: replica.name, status: (await replica.call('/api/providers/openai/check', { method: 'POST' })).status })))
  return Promise.all(calls)
}

function peakOf (requests: ProviderRequest[]): number {
  const edges = requests.flatMap((request) => [{ at: request.startedAt, step: 1 }, { at: request.endedAt ?? Infinity, step: -1 }])
    .sort((x, y) => x.at - y.at || x.step - y.step)
  let inFlight = 0
  let peak = 0
  for (const edge of edges) peak = Math.max(peak, inFlight += edge.step)
  return peak
}

const startsOf = (requests: ProviderRequest[]): number[] => requests.map((request) => request.startedAt).sort((x, y) => x - y)

const gapsOf = (requests: ProviderRequest[]): number[] => {
  const starts = startsOf(requests)
  return starts.slice(1).map((start, i) => start - starts[i]!)
}

/** minTime, as the upstream sees it: no two requests close together, and on average minTime apart. */
function assertSpaced (t: Test, requests: ProviderRequest[], what: string): void {
  const gaps = gapsOf(requests)
  t.ok(gaps.every((gap) => gap >= MIN_TIME_MS - TOLERANCE_MS), `minTime ${what}: no two requests closer (gaps ${gaps.join(', ')} ms)`)
  const starts = startsOf(requests)
  const sinceFirst = starts.slice(1).map((start) => start - starts[0]!)
  t.ok(sinceFirst.every((elapsed, i) => elapsed >= (i + 1) * MIN_TIME_MS - TOLERANCE_MS), `the i-th request at least i minTimes after the first (${sinceFirst.join(', ')} ms)`)
  const mean = gaps.reduce((sum, gap) => sum + gap, 0) / gaps.length
  t.ok(mean >= MIN_TIME_MS * 0.95, `and ${Math.round(mean)} ms apart on average`)
}

t.test('a PROVIDERS_FILE limiter override holds for the three replicas together', async (t) => {
  await limitersRegistered(redis)
  t.match((await replicas[0]!.call('/api/providers/openai')).body.limiter, { max_concurrent: 1, min_time_ms: MIN_TIME_MS })
  openai.requests.length = 0
  const answers = await burst()
  t.ok(answers.every((answer) => answer.status === 200), 'every check answered')
  t.equal(openai.requests.length, 18, 'two requests per check')
  t.equal(peakOf(openai.requests), 1, 'maxConcurrent 1: never two requests at the upstream at once, whichever replica sent them')
  assertSpaced(t, openai.requests, 'between any two requests of the cluster')
})

t.test('Redis frozen for a moment in the middle of a run (as on a starved machine): the calls wait for it, and the limits still hold for the cluster', async (t) => {
  await limitersRegistered(redis)
  openai.requests.length = 0
  const running = burst()
  // Every call has passed the request's own Redis reads and waits in the limiter by now.
  await sleep(MIN_TIME_MS * 3)
  await redis.pause(5000)
  const answers = await running
  t.same(answers.filter((answer) => answer.status !== 200), [], 'every check answered')
  t.equal(openai.requests.length, 18, 'two requests per check')
  t.equal(peakOf(openai.requests), 1, 'maxConcurrent holds through the freeze')
  t.ok(gapsOf(openai.requests).every((gap) => gap >= MIN_TIME_MS - TOLERANCE_MS), `minTime holds through the freeze (gaps ${gapsOf(openai.requests).join(', ')} ms)`)
  for (const replica of replicas) t.notMatch(replica.server.stdout(), /own limiter/, `${replica.name} never fell back to its own limiter`)
})

t.test('FLUSHALL in the middle of a run: every call answers, and the replicas are clustered again within seconds', async (t) => {
  await limitersRegistered(redis)
  const running = burst()
  await sleep(MIN_TIME_MS * 3)
  t.equal(await redis.command('FLUSHALL'), '+OK')
  const answers = await running
  t.same(answers.filter((answer) => answer.status !== 200), [], 'no call failed with SETTINGS_KEY_NOT_FOUND (or anything)')

  // Recovered by themselves: Bottleneck's keys and every replica's registration are back…
  await limitersRegistered(redis)
  // …and the limits hold across the cluster again.
  openai.requests.length = 0
  const after = await burst()
  t.ok(after.every((answer) => answer.status === 200))
  t.equal(peakOf(openai.requests), 1, 'maxConcurrent holds again')
  assertSpaced(t, openai.requests, 'again')
  for (const replica of replicas) t.match(replica.server.stdout(), /re-created/, `${replica.name} logged the recovery`)
})

t.test('Redis stopped: a provider call goes through the replica\'s own limiter, no hang, no crash', async (t) => {
  await redis.stop()
  const answer = await replicas[1]!.call('/api/providers/openai/check', { method: 'POST' })
  t.equal(answer.status, 200, 'the check answered without Redis')
  t.ok(answer.body.checks.every((check: { ok: boolean }) => check.ok))
  await redis.start()
  await limitersRegistered(redis)
  t.equal((await replicas[1]!.call('/api/providers/openai/check', { method: 'POST' })).status, 200, 'and with Redis back')
  for (const replica of replicas) t.equal(replica.server.child.exitCode, null, `${replica.name} is still running`)
})

t.test('a replica started while Redis is away joins the cluster\'s limits once Redis answers', async (t) => {
  await redis.stop()
  const late = await add('d')
  // It answers without Redis, through its own limiter.
  t.equal((await late.call('/api/providers/openai/check', { method: 'POST' })).status, 200, 'd answers while Redis is away')
  await redis.start()
  await limitersRegistered(redis, replicas.length + 1)
  openai.requests.length = 0
  const answers = await burst([replicas[0]!, late])
  t.ok(answers.every((answer) => answer.status === 200), 'every check answered')
  t.equal(peakOf(openai.requests), 1, 'maxConcurrent holds with the late replica')
  assertSpaced(t, openai.requests, 'with the late replica')
})
