import t from 'tap'
import { FakeHub } from '../fakes/fake-hub.js'
import { auth, buildTestApp } from '../helpers/app.js'
import { providersAndApp, TOKENS } from '../helpers/providers.js'

// The Hub's RateLimit / RateLimit-Policy headers (https://huggingface.co/docs/hub/rate-limits), sent
// by the fake Hub exactly as the Hub writes them: a 429 waits its `t`, the quota shows per bucket,
// and a bucket running low is paced instead of running into the 429.

const plan = { model_id: 'org/tiny', auto: false }
const apiRequests = (hub: FakeHub): number => hub.requests.filter((request) => request.path.startsWith('/api/')).length

t.test('a 429 with only RateLimit t cools the Hub down for t seconds (not 120 s), and nothing is sent meanwhile', async (t) => {
  const { app, hub, clock } = await providersAndApp(t)
  hub.scriptApi('/api/models/org/tiny', [{ status: 429, rateLimit: { bucket: 'api', remaining: 0, resetS: 7, quota: 1000, windowS: 300 } }])
  const limited = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: plan })
  t.match({ status: limited.statusCode, retryAfter: limited.headers['retry-after'], body: limited.json() },
    { status: 502, retryAfter: '7', body: { code: 'MD_HUB_ERROR' } }, 'the caller is told the Hub\'s t as its Retry-After')

  const summary = (await app.inject({ url: '/api/providers/huggingface', headers: auth() })).json()
  t.match(summary.health, { status: 'rate_limited', consecutive_429s: 1 })
  const cooldownMs = Date.parse(summary.health.cooldown_until) - clock.now
  t.ok(cooldownMs >= 7000 && cooldownMs <= 7700, `t = 7 s plus at most 10 % of jitter (${cooldownMs} ms), not PROVIDER_RATE_LIMIT_BACKOFF_MS`)
  t.same(summary.rate_limit, { api: { remaining: 0, limit: 1000, resets_at: new Date(clock.now + 7000).toISOString() } })

  const sent = hub.requests.length
  for (let i = 0; i < 3; i++) {
    const refused = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: plan })
    t.match(refused.json(), { code: 'MD_PROVIDER_UNAVAILABLE', details: { status: 'rate_limited', retry_after_s: 8 } })
  }
  t.equal(hub.requests.length, sent, 'nothing went to the Hub during the cooldown')

  clock.now += cooldownMs
  const again = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: plan })
  t.equal(again.statusCode, 200, 'at the end of t the Hub takes calls again')
  t.ok(hub.requests.length > sent)
})

t.test('a 429 with neither Retry-After nor RateLimit still backs off for PROVIDER_RATE_LIMIT_BACKOFF_MS', async (t) => {
  const { app, hub, clock } = await providersAndApp(t, { PROVIDER_RATE_LIMIT_BACKOFF_MS: '45000' })
  hub.scriptApi('/api/models/org/tiny', [429])
  await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: plan })
  const health = (await app.inject({ url: '/api/providers/huggingface', headers: auth() })).json().health
  t.equal(Date.parse(health.cooldown_until) - clock.now, 45_000)
})

t.test('the quota per bucket shows in the provider\'s status and the metrics; a bucket running low is paced, never 429ed', async (t) => {
  // 20 API calls per 2-second window: under 10 % (2 left) the calls are spaced until the reset.
  const hub = await FakeHub.start({ tokens: { [TOKENS.hf]: { name: 'ada', role: 'read' } }, rateLimits: { api: { quota: 20, windowS: 2 } } })
  t.teardown(() => hub.close())
  hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: '1'.repeat(40), files: [{ path: 'config.json', content: '{}' }] } } })
  const { app } = await buildTestApp(t, { HF_ENDPOINT: hub.url, HF_TOKEN: TOKENS.hf, RATE_LIMIT_PER_MINUTE: '10000' })

  const first = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: plan })
  t.equal(first.statusCode, 200)
  const perPlan = apiRequests(hub)
  const summary = (await app.inject({ url: '/api/providers/huggingface', headers: auth() })).json()
  t.match(summary.rate_limit, { api: { remaining: 20 - perPlan, limit: 20, resets_at: String } })
  t.notOk('resolvers' in summary.rate_limit, 'no resolver was asked yet')
  const metrics = (await app.inject({ url: '/metrics', headers: auth() })).body
  t.match(metrics, new RegExp(`^modeldepot_hub_ratelimit_remaining\\{bucket="api"\\} ${20 - perPlan}$`, 'm'))

  // More plans than one window's quota allows.
  const plans = Math.ceil(30 / perPlan)
  for (let i = 0; i < plans; i++) {
    const res = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: plan })
    t.equal(res.statusCode, 200, `plan ${i + 2} answered`)
  }
  const api = hub.requests.filter((request) => request.path.startsWith('/api/'))
  t.ok(api.length > 20, `${api.length} API calls, more than one window holds`)
  t.same(api.filter((request) => request.status === 429), [], 'the Hub never had to refuse one')
  const start = api[0]!.at
  t.ok(api.filter((request) => request.at < start + 2000).length <= 20, 'no more than the quota went within the first window')
  t.equal((await app.inject({ url: '/api/providers/huggingface', headers: auth() })).json().health.consecutive_429s, 0)
})

t.test('the Hub\'s caller errors (X-Error-Code, even on a 401) never mark it down; a rejected token does', async (t) => {
  const { app, hub } = await providersAndApp(t, { PROVIDER_FAILURES_TO_DOWN: '2' })
  hub.scriptApi('/api/models/org/tiny', [401, 401, 401].map((status) => ({ status, errorCode: 'RepoNotFound' })))
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: plan })
    t.match(res.json(), { code: 'MD_MODEL_NOT_FOUND' })
  }
  hub.scriptApi('/api/models/org/tiny', [{ status: 401, errorCode: 'GatedRepo' }, { status: 404, errorCode: 'RevisionNotFound' }])
  for (let i = 0; i < 2; i++) await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: plan })
  t.match((await app.inject({ url: '/api/providers/huggingface', headers: auth() })).json().health, { status: 'online', consecutive_failures: 0, cooldown_until: null })

  hub.revokeToken(TOKENS.hf)
  for (let i = 0; i < 2; i++) {
    const res = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: plan })
    t.match(res.json(), { code: 'MD_HF_TOKEN_INVALID' })
  }
  const health = (await app.inject({ url: '/api/providers/huggingface', headers: auth() })).json().health
  t.match(health, { status: 'down', consecutive_failures: 2, last_error: { status: 401 } }, 'no call can succeed with a refused token')
})
