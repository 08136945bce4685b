import t from 'tap'
import { auth } from '../helpers/app.js'
import { providersAndApp, TOKENS } from '../helpers/providers.js'

const MINUTE = 60_000

t.test('GET /api/providers lists every provider, best first, tokens masked', async (t) => {
  const { app } = await providersAndApp(t)
  const res = await app.inject({ url: '/api/providers', headers: auth() })
  t.equal(res.statusCode, 200)
  const { providers } = res.json()
  t.same(providers.map((provider: { name: string }) => provider.name), ['huggingface', 'openrouter', 'openai'], 'by priority while all are healthy')
  t.match(providers[0], { kind: 'huggingface', token_env: 'HF_TOKEN', token: 'hf_****1234', health: { status: 'online', requests: 0 }, limiter: { max_concurrent: 8 } })
  t.match(providers[1], { token: 'sk-****5678' })
  for (const token of Object.values(TOKENS)) t.notOk(res.body.includes(token), 'no token value in the answer')
  t.equal((await app.inject({ url: '/api/providers/nope', headers: auth() })).json().code, 'MD_PROVIDER_NOT_FOUND')
})

t.test('providers of equal priority and health are listed fastest first', async (t) => {
  const providersFile = t.testdir({ 'providers.json': JSON.stringify([{ name: 'openrouter', priority: 5 }, { name: 'openai', priority: 5 }]) })
  const { app, openrouter, openai, clock } = await providersAndApp(t, { PROVIDERS_FILE: `${providersFile}/providers.json` })
  // The test's clock moves while the upstream answers, so each call takes exactly that long.
  openai.onRequest = () => { clock.now += 300 }
  openrouter.onRequest = () => { clock.now += 40 }
  const names = async (): Promise<string[]> => (await app.inject({ url: '/api/providers', headers: auth() })).json().providers.map((p: { name: string }) => p.name)
  t.same(await names(), ['huggingface', 'openai', 'openrouter'], 'before any call: by priority, then by name')
  for (const name of ['openrouter', 'openai']) await app.inject({ url: `/api/providers/${name}/models`, headers: auth() })
  const listed = (await app.inject({ url: '/api/providers', headers: auth() })).json().providers
  t.match(listed.find((p: { name: string }) => p.name === 'openai').health, { latency_avg_ms: 300 })
  t.match(listed.find((p: { name: string }) => p.name === 'openrouter').health, { latency_avg_ms: 40 })
  t.same(await names(), ['huggingface', 'openrouter', 'openai'], 'the faster one first')

  openrouter.script('/models', [500, 500, 500])
  for (let i = 0; i < 3; i++) await app.inject({ url: '/api/providers/openrouter/models?refresh=true', headers: auth() })
  t.same(await names(), ['huggingface', 'openai', 'openrouter'], 'healthy before unhealthy, however fast')
})

t.test('a provider without its key is unconfigured and refuses calls without touching the upstream', async (t) => {
  const { app, openrouter } = await providersAndApp(t, { OPENROUTER_API_KEY: '' })
  t.equal((await app.inject({ url: '/api/providers/openrouter', headers: auth() })).json().health.status, 'unconfigured')
  const res = await app.inject({ url: '/api/providers/openrouter/models', headers: auth() })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { code: 'MD_PROVIDER_UNAVAILABLE', details: { provider: 'openrouter', status: 'unconfigured' } })
  t.same(openrouter.requests, [])
  const listed = (await app.inject({ url: '/api/providers', headers: auth() })).json().providers.map((provider: { name: string }) => provider.name)
  t.equal(listed.at(-1), 'openrouter', 'unhealthy providers come last')
})

t.test('check: token and catalogue, with the account, fix steps and curl commands without the token', async (t) => {
  const { app, openrouter } = await providersAndApp(t)
  const hf = (await app.inject({ method: 'POST', url: '/api/providers/huggingface/check', headers: auth() })).json()
  t.match(hf, { provider: 'huggingface', ok: true, account: { name: 'ada', role: 'read' }, checks: [{ name: 'token', ok: true, status: 200 }, { name: 'catalogue', ok: true, status: 200 }] })
  t.match(hf.checks[0].curl, /^curl -s -H "Authorization: Bearer \$HF_TOKEN" '.*\/api\/whoami-v2'$/)

  openrouter.script('/key', [401])
  const bad = (await app.inject({ method: 'POST', url: '/api/providers/openrouter/check', headers: auth() })).json()
  t.equal(bad.ok, false)
  t.match(bad.checks[0], { name: 'token', ok: false, status: 401, fix_steps: [/invalid or revoked/, /OPENROUTER_API_KEY/] })

  openrouter.script('/key', [{ status: 429, retryAfter: 30 }])
  const limited = (await app.inject({ method: 'POST', url: '/api/providers/openrouter/check', headers: auth() })).json()
  t.match(limited.checks[0].fix_steps[0], /rate-limiting this token until 2026-11-22T12:00:30/)
  openrouter.script('/key', [403])
  const forbidden = (await app.inject({ method: 'POST', url: '/api/providers/openrouter/check', headers: auth() })).json()
  t.match(forbidden.checks[0].fix_steps.join(' '), /permission.*accept its terms/)

  const openai = (await app.inject({ method: 'POST', url: '/api/providers/openai/check', headers: auth() })).json()
  t.equal(openai.ok, true)
  for (const token of Object.values(TOKENS)) t.notOk(JSON.stringify([hf, bad, openai]).includes(token))
})

t.test('429s: back off 2 then 4 minutes (or Retry-After), blacklist on the third, fail fast meanwhile, and recover', async (t) => {
  const { app, openrouter, clock } = await providersAndApp(t)
  const models = async (): Promise<{ statusCode: number, headers: Record<string, unknown>, json: () => any }> => app.inject({ url: '/api/providers/openrouter/models?refresh=true', headers: auth() })
  const status = async (): Promise<any> => (await app.inject({ url: '/api/providers/openrouter', headers: auth() })).json().health

  openrouter.script('/models', [429, 429, 429])
  t.equal((await models()).statusCode, 502, 'the first 429 is an upstream error')
  t.match(await status(), { status: 'rate_limited', consecutive_429s: 1, cooldown_until: '2026-11-22T12:02:00.000Z' })

  const calls = openrouter.requests.length
  const refused = await models()
  t.equal(refused.statusCode, 503, 'fails fast while it cools down')
  t.equal(refused.headers['retry-after'], '120')
  t.match(refused.json(), { code: 'MD_PROVIDER_UNAVAILABLE', details: { status: 'rate_limited', cooldown_until: '2026-11-22T12:02:00.000Z' } })
  t.equal(openrouter.requests.length, calls, 'without touching the upstream')

  clock.now += 2 * MINUTE
  await models()
  t.match(await status(), { status: 'rate_limited', consecutive_429s: 2, cooldown_until: '2026-11-22T12:06:00.000Z' }, 'then 4 minutes')
  clock.now += 4 * MINUTE
  await models()
  t.match(await status(), { status: 'blacklisted', consecutive_429s: 3, cooldown_until: '2026-11-22T12:16:00.000Z' }, 'the third blacklists for 10 minutes')
  clock.now += 9 * MINUTE
  t.equal((await models()).statusCode, 503, 'still blacklisted')
  clock.now += MINUTE
  t.equal((await models()).statusCode, 200, 'back after the blacklist')
  t.match(await status(), { status: /^(online|degraded)$/, consecutive_429s: 0, cooldown_until: null }, 'a success resets the counters')

  openrouter.script('/models', [{ status: 429, retryAfter: 7 }])
  await models()
  t.match(await status(), { status: 'rate_limited', cooldown_until: '2026-11-22T12:16:07.000Z' }, 'Retry-After wins over the schedule')
})

t.test('5xx and network failures: down after three, one probe after the cooldown, a success resets', async (t) => {
  const { app, openai, clock } = await providersAndApp(t)
  const models = async (): Promise<number> => (await app.inject({ url: '/api/providers/openai/models?refresh=true', headers: auth() })).statusCode
  const health = async (): Promise<any> => (await app.inject({ url: '/api/providers/openai', headers: auth() })).json().health
  openai.script('/models', [500, 503, 502, 500])
  await models()
  t.match(await health(), { status: 'degraded', consecutive_failures: 1 })
  await models()
  await models()
  t.match(await health(), { status: 'down', consecutive_failures: 3, last_error: { status: 502, code: 'HTTP_502' } })
  t.equal(await models(), 503, 'fails fast while down')
  clock.now += MINUTE
  t.equal(await models(), 502, 'the probe went through and failed')
  t.match(await health(), { status: 'down' }, 'down again')
  clock.now += MINUTE
  t.equal(await models(), 200, 'the next probe succeeds')
  t.match(await health(), { status: 'online', consecutive_failures: 0 }, 'a successful probe brings it back online')
  t.ok((await health()).latency_avg_ms !== null)

  const diagnostics = (await app.inject({ url: '/api/providers/openai/diagnostics', headers: auth() })).json()
  t.match(diagnostics.recent_errors[0], { provider: 'openai', status: 500, action: 'marked_down' })
  t.equal(diagnostics.recent_errors.length, 4)
  t.notOk(JSON.stringify(diagnostics).includes(TOKENS.openai), 'secrets redacted')
})

t.test('a 404 from the upstream is kept among recent errors and leaves the provider online', async (t) => {
  const { app } = await providersAndApp(t)
  const validated = await app.inject({ method: 'POST', url: '/api/providers/huggingface/models/validate', headers: auth(), payload: { model_id: 'org/missing' } })
  t.match(validated.json(), { valid: false })
  const health = (await app.inject({ url: '/api/providers/huggingface', headers: auth() })).json().health
  t.match(health, { status: 'online', consecutive_failures: 0, failures: 0, last_error: { status: 404 } })
  const diagnostics = (await app.inject({ url: '/api/providers/huggingface/diagnostics', headers: auth() })).json()
  t.match(diagnostics.recent_errors, [{ provider: 'huggingface', status: 404, code: 'HTTP_404', action: 'recorded' }])
  const status = (await app.inject({ url: '/api/system-status', headers: auth() })).json()
  t.match(status.errors, { total: 1, by_provider: { huggingface: { count: 1, by_status: { 404: 1 } } } })
  t.equal(status.overall_health, 'healthy', 'a model that does not exist says nothing bad about the provider')
})

t.test('429s of one burst count once; a check never lifts a backoff', async (t) => {
  const { app, hub, openrouter } = await providersAndApp(t)
  hub.scriptApi('/api/models', [{ status: 429, delayMs: 50 }, { status: 429, delayMs: 50 }, { status: 429, delayMs: 50 }])
  await Promise.all([1, 2, 3].map(async () => app.inject({ method: 'POST', url: '/api/providers/huggingface/models/validate', headers: auth(), payload: { model_id: 'org/tiny' } })))
  const health = (await app.inject({ url: '/api/providers/huggingface', headers: auth() })).json().health
  t.match(health, { status: 'rate_limited', consecutive_429s: 1 }, 'three calls in flight hit the limit once: not blacklisted')

  openrouter.script('/models', [429])
  await app.inject({ url: '/api/providers/openrouter/models', headers: auth() })
  const check = (await app.inject({ method: 'POST', url: '/api/providers/openrouter/check', headers: auth() })).json()
  t.equal(check.ok, true, 'the check asked anyway')
  t.equal((await app.inject({ url: '/api/providers/openrouter', headers: auth() })).json().health.status, 'rate_limited', 'and the backoff stands')
})

t.test('a refused candidate token, or a late answer to the old token, leaves the health of the token in use alone', async (t) => {
  const { app, openai } = await providersAndApp(t)
  const refused = await app.inject({ method: 'PUT', url: '/api/providers/openai/token', headers: auth(), payload: { token: 'sk-openai-wrong-token-0000' } })
  t.equal(refused.statusCode, 422)
  t.match((await app.inject({ url: '/api/providers/openai', headers: auth() })).json().health, { status: 'online', failures: 0 })

  const newToken = 'sk-openai-rotated-1111-2222'
  openai.setTokens([TOKENS.openai, newToken])
  openai.script('/models', [{ status: 429, delayMs: 300 }])
  // light-my-request sends only once the chain is awaited: `then` sends it now.
  const late = app.inject({ url: '/api/providers/openai/models', headers: auth() }).then((res) => res)
  await new Promise((resolve) => setTimeout(resolve, 50))
  await app.inject({ method: 'PUT', url: '/api/providers/openai/token?validate=false', headers: auth(), payload: { token: newToken } })
  const served = await late
  t.equal(served.statusCode, 200, 'the list was fetched again with the new token')
  t.match((await app.inject({ url: '/api/providers/openai', headers: auth() })).json().health, { status: 'online', consecutive_429s: 0 }, 'the old token\'s 429 did not count')
})
