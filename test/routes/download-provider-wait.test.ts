import t, { type Test } from 'tap'
import { auth } from '../helpers/app.js'
import { C1, hubAndApp, startDownload, waitForEnd } from '../helpers/downloads.js'
import { listen, openStream, until } from '../helpers/event-stream.js'
import { startRedisServer } from '../helpers/redis-server.js'

// A background download that meets the Hub cooling down is accepted (202) and waits, queued, with
// `waiting: {reason: "provider_cooldown", until}`, then starts by itself when the cooldown ends;
// wait_for_provider=false keeps the fail-fast 503. With the in-memory store and with Redis.

const request = { model_id: 'org/tiny', allow_patterns: 'config.json' }

/** A 429 whose RateLimit t is 2 s cools the Hub down (the plan that met it answers 502). */
async function coolDown (app: Awaited<ReturnType<typeof hubAndApp>>['app'], hub: Awaited<ReturnType<typeof hubAndApp>>['hub']): Promise<string> {
  hub.scriptApi('/api/models/org/tiny', [{ status: 429, rateLimit: { bucket: 'api', remaining: 0, resetS: 2, quota: 1000, windowS: 300 } }])
  const met = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: { model_id: 'org/tiny', auto: false } })
  if (met.statusCode !== 502) throw new Error(`the plan meeting the 429 answered ${met.statusCode}`)
  return (await app.inject({ url: '/api/providers/huggingface', headers: auth() })).json().health.cooldown_until
}

async function waitsThenCompletes (t: Test, env: Record<string, string>): Promise<void> {
  const { app, hub } = await hubAndApp(t, { RATE_LIMIT_PER_MINUTE: '10000', ...env })
  const base = await listen(app)
  const cooldownUntil = await coolDown(app, hub)
  const sent = hub.requests.length

  const { statusCode, job, location } = await startDownload(app, request)
  t.equal(statusCode, 202, 'accepted instead of 503')
  t.match(job, { status: 'queued', waiting: { reason: 'provider_cooldown', until: cooldownUntil }, commit: '' })
  t.equal(location, `/api/downloads/${job.job_id as string}`)
  t.equal(hub.requests.length, sent, 'nothing was sent to the Hub for it')

  const progress = (await app.inject({ url: `/api/download-progress?job_id=${job.job_id as string}`, headers: auth() })).json()
  t.match(progress, { status: 'queued', waiting: { reason: 'provider_cooldown', until: cooldownUntil }, queued_downloads: 1 })
  const stream = await openStream(`${base}/api/downloads/${job.job_id as string}/events`)
  t.teardown(() => stream.close())
  await until(() => stream.events.length > 0, 'the first event')
  t.match(stream.events[0]!.data, { status: 'queued', waiting: { until: cooldownUntil } }, 'the event stream shows the wait too')

  const ended = await waitForEnd(app, job.job_id)
  t.match(ended, { status: 'complete', commit: C1, files_total: 1, files_done: 1 }, 'it ran once the cooldown had ended, planned then')
  t.notOk('waiting' in ended, 'no longer waiting')
  const forIt = hub.requests.slice(sent).filter((entry) => entry.path.includes('org/tiny'))
  t.ok(forIt.length > 0 && forIt.every((entry) => entry.at >= Date.parse(cooldownUntil)), 'its first call to the Hub came after the cooldown')
  await stream.ended
  t.match(stream.events.at(-1), { event: 'complete' })
}

t.test('in memory: a download during a Hub cooldown is queued with waiting, then completes', async (t) => {
  await waitsThenCompletes(t, {})
})

t.test('with Redis: the same, the wait kept in the shared store', async (t) => {
  const redis = await startRedisServer(t)
  await waitsThenCompletes(t, { REDIS_URL: redis.url })
})

t.test('wait_for_provider=false keeps the fail-fast 503, and no job is made', async (t) => {
  const { app, hub } = await hubAndApp(t, { RATE_LIMIT_PER_MINUTE: '10000' })
  await coolDown(app, hub)
  const res = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: { ...request, wait_for_provider: false } })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { code: 'MD_PROVIDER_UNAVAILABLE', details: { provider: 'huggingface', status: 'rate_limited' } })
  t.same((await app.inject({ url: '/api/downloads', headers: auth() })).json().jobs, [])
  const plan = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: { model_id: 'org/tiny', auto: false } })
  t.equal(plan.statusCode, 503, 'a plan (auto=false) needs the Hub now: it is not queued')
})
