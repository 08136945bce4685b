import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { FakeHub } from '../fakes/fake-hub.js'
import { auth, buildTestApp } from '../helpers/app.js'
import { TOKENS } from '../helpers/providers.js'

// An idle node: after an outage nobody calls the Hub, yet its status follows the Hub, because the
// end of each cooldown is followed by one cheap call (whoami-v2 with the token in use).

const plan = { model_id: 'org/tiny', auto: false }

async function idleHubAndApp (t: Test, env: Record<string, string> = {}): Promise<{ app: FastifyInstance, hub: FakeHub }> {
  const hub = await FakeHub.start({ tokens: { [TOKENS.hf]: { name: 'ada', role: 'read' } } })
  t.teardown(() => hub.close())
  hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: '1'.repeat(40), files: [{ path: 'config.json', content: '{}' }] } } })
  // The real clock: the probe is the app's own timer, which no test clock moves.
  const { app } = await buildTestApp(t, { HF_ENDPOINT: hub.url, HF_TOKEN: TOKENS.hf, PROVIDER_FAILURES_TO_DOWN: '2', PROVIDER_DOWN_COOLDOWN_MS: '600', RATE_LIMIT_PER_MINUTE: '10000', ...env })
  return { app, hub }
}

const healthOf = async (app: FastifyInstance): Promise<Record<string, any>> =>
  (await app.inject({ url: '/api/providers/huggingface', headers: auth() })).json().health

/** Reads the status (which sends nothing to the Hub) until `reached` holds. */
async function waitForHealth (app: FastifyInstance, reached: (health: Record<string, any>) => boolean, what: string): Promise<Record<string, any>> {
  for (let i = 0; i < 1000; i++) {
    const health = await healthOf(app)
    if (reached(health)) return health
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`the Hub provider never became ${what}`)
}

async function outage (app: FastifyInstance, hub: FakeHub): Promise<void> {
  hub.scriptApi('/api/models/org/tiny', [503, 503])
  for (let i = 0; i < 2; i++) await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: plan })
}

t.test('a provider marked down comes back online after its cooldown with no traffic: one whoami-v2 probe', async (t) => {
  const { app, hub } = await idleHubAndApp(t)
  await outage(app, hub)
  const down = await healthOf(app)
  t.match(down, { status: 'down', consecutive_failures: 2 })
  t.match((await app.inject({ url: '/api/system-status', headers: auth() })).json(), { overall_health: 'unhealthy' }, 'the system is unhealthy meanwhile')
  const mark = hub.requests.length

  const recovered = await waitForHealth(app, (health) => health.status === 'online', 'online')
  t.match(recovered, { consecutive_failures: 0, cooldown_until: null })
  const probes = hub.requests.slice(mark)
  t.same(probes.map((request) => [request.method, request.path, request.authorization, request.status]), [['GET', '/api/whoami-v2', `Bearer ${TOKENS.hf}`, 200]], 'one cheap authenticated call, nothing else')
  t.ok(probes[0]!.at >= Date.parse(down.cooldown_until), 'sent once the cooldown had ended, not before')
  t.notMatch((await app.inject({ url: '/api/system-status', headers: auth() })).json(), { overall_health: 'unhealthy' })
})

t.test('a probe that fails starts the next cooldown; the one after it brings the provider back', async (t) => {
  const { app, hub } = await idleHubAndApp(t)
  await outage(app, hub)
  const mark = hub.requests.length
  hub.scriptApi('/api/whoami-v2', [503])
  await waitForHealth(app, (health) => health.status === 'online', 'online')
  t.same(hub.requests.slice(mark).map((request) => [request.path, request.status]), [['/api/whoami-v2', 503], ['/api/whoami-v2', 200]])
  const diagnostics = (await app.inject({ url: '/api/providers/huggingface/diagnostics', headers: auth() })).json()
  t.match(diagnostics.recent_errors[0], { status: 503, action: 'marked_down' }, 'the failed probe put it down again')
})

t.test('a refused token keeps the provider down: its probe fails as the calls did', async (t) => {
  const { app, hub } = await idleHubAndApp(t)
  hub.revokeToken(TOKENS.hf)
  for (let i = 0; i < 2; i++) await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: plan })
  t.match(await healthOf(app), { status: 'down' })
  const mark = hub.requests.length
  for (let i = 0; i < 1000 && hub.requests.length < mark + 2; i++) await new Promise((resolve) => setTimeout(resolve, 25))
  t.same(hub.requests.slice(mark, mark + 2).map((request) => [request.path, request.status]), [['/api/whoami-v2', 401], ['/api/whoami-v2', 401]], 'probed after each cooldown')
  t.match(await healthOf(app), { status: 'down' })
})

t.test('after a 429 a probe follows the end of its t, with no traffic', async (t) => {
  const { app, hub } = await idleHubAndApp(t)
  hub.scriptApi('/api/models/org/tiny', [{ status: 429, rateLimit: { bucket: 'api', remaining: 0, resetS: 1, quota: 1000, windowS: 300 } }])
  await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: plan })
  const limited = await healthOf(app)
  t.match(limited, { status: 'rate_limited', consecutive_429s: 1 })
  const mark = hub.requests.length
  const after = await waitForHealth(app, (health) => health.consecutive_429s === 0, 'clear of its 429')
  t.match(after, { status: /^(online|degraded)$/, cooldown_until: null }, 'taking calls, the 429 still in its success rate')
  const probes = hub.requests.slice(mark)
  t.same(probes.map((request) => request.path), ['/api/whoami-v2'])
  t.ok(probes[0]!.at >= Date.parse(limited.cooldown_until), 'not before the Hub said')
})
