import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { FakeHub } from '../fakes/fake-hub.js'
import { FakeProvider } from '../fakes/fake-providers.js'
import { TOKENS } from '../helpers/providers.js'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { startReplicas, type Replica } from '../helpers/replicas.js'

// Issue 16, point 6 (and the settings part of 10): three server processes, one real Redis, fake
// upstreams that count what they are sent. A 429 one replica got holds back all three until the
// cooldown ends; a token rotation, a block and the default model are the same on every replica the
// moment the change is answered; with Redis away, a change is refused (503) and reads go on.

interface Cluster {
  redis: RedisServer
  hub: FakeHub
  openrouter: FakeProvider
  replicas: Replica[]
}

async function cluster (t: Test): Promise<Cluster> {
  const redis = await startRedisServer(t)
  const hub = await FakeHub.start({ tokens: { [TOKENS.hf]: { name: 'ada', role: 'read' } } })
  hub.addRepo({ id: 'org/tiny', pipelineTag: 'text-generation', revisions: { main: { commit: '1'.repeat(40), files: [{ path: 'config.json', content: '{}' }] } } })
  const openrouter = await FakeProvider.start({ kind: 'openrouter', tokens: [TOKENS.openrouter], models: [{ id: 'meta-llama/llama-3.1-8b-instruct' }, { id: 'openai/gpt-4o-mini' }] })
  t.teardown(async () => { await Promise.all([hub.close(), openrouter.close()]) })
  const { replicas } = await startReplicas(t, ['a', 'b', 'c'], {
    REDIS_URL: redis.url,
    HF_ENDPOINT: hub.url,
    HF_TOKEN: TOKENS.hf,
    OPENROUTER_BASE_URL: openrouter.url,
    OPENROUTER_API_KEY: TOKENS.openrouter
  })
  await Promise.all(replicas.map(async (replica) => redisReady(replica)))
  return { redis, hub, openrouter, replicas }
}

// A replica connects to Redis in the background; readiness says when it has.
async function redisReady (replica: Replica): Promise<void> {
  const deadline = Date.now() + 15_000
  while ((await fetch(`http://127.0.0.1:${replica.port}/health/ready`)).status !== 200) {
    if (Date.now() > deadline) throw new Error(`replica ${replica.name} never got ready`)
    await sleep(100)
  }
}

const health = async (replica: Replica, provider: string): Promise<{ status: string, cooldown_until: string | null }> => {
  const { body } = await replica.call(`/api/providers/${provider}`)
  return body.health
}

// Each cluster is three server processes: the tests of one kind share one.
t.setTimeout(240_000)

const providerIn = (status: { providers: Array<{ name: string, health: unknown }> }, name: string): { health: unknown } =>
  status.providers.find((provider) => provider.name === name)!

const catalogueRequests = (fake: FakeProvider): number => fake.requests.filter((request) => request.path.endsWith('/models')).length
const hubListings = (hub: FakeHub): number => hub.requests.filter((request) => request.path === '/api/models').length

t.test('cooldowns are the cluster\'s', async (t) => {
  const { hub, openrouter, replicas: [a, b, c] } = await cluster(t)

  t.test('a 429 with Retry-After that A got from OpenRouter holds back B and C until the cooldown ends', async (t) => {
    // Long enough for every check below on a busy machine; the test then waits it out.
    openrouter.script('/models', [{ status: 429, retryAfter: 10 }])
    const first = await a!.call('/api/providers/openrouter/models?refresh=true')
    t.equal(first.status, 502, 'A got the 429 from the upstream')
    t.equal(catalogueRequests(openrouter), 1)

    const onA = await health(a!, 'openrouter')
    t.equal(onA.status, 'rate_limited')
    t.ok(onA.cooldown_until !== null)
    for (const replica of [b!, c!]) {
      t.match(await health(replica, 'openrouter'), { status: 'rate_limited', cooldown_until: onA.cooldown_until }, `${replica.name} reports A's cooldown`)
      const listed = (await replica.call('/api/providers')).body.providers.find((p: { name: string }) => p.name === 'openrouter')
      t.match(listed.health, { status: 'rate_limited', cooldown_until: onA.cooldown_until }, `${replica.name} lists it so`)
      const status = (await replica.call('/api/system-status')).body
      t.match(providerIn(status, 'openrouter').health, { status: 'rate_limited', cooldown_until: onA.cooldown_until }, `${replica.name}'s system status shows the same`)
      const refused = await replica.call('/api/providers/openrouter/models?refresh=true')
      t.equal(refused.status, 503, `${replica.name} refuses at once`)
      t.equal(refused.body.code, 'MD_PROVIDER_UNAVAILABLE')
      t.ok(Number(refused.headers.get('retry-after')) >= 1, 'with Retry-After')
    }
    t.equal(catalogueRequests(openrouter), 1, 'nothing more reached OpenRouter during the cooldown')

    // The cooldown ends (as Retry-After said): B calls again, and succeeds for everyone.
    await sleep(Math.max(0, Date.parse(onA.cooldown_until!) - Date.now()) + 200)
    const after = await b!.call('/api/providers/openrouter/models?refresh=true')
    t.equal(after.status, 200, 'after the cooldown B gets through')
    t.equal(catalogueRequests(openrouter), 2)
    for (const replica of [a!, b!, c!]) t.equal((await health(replica, 'openrouter')).cooldown_until, null, `${replica.name}: no cooldown any more`)
  })

  t.test('a 429 from the Hub on A holds back the Hub for B and C, system status included', async (t) => {
    hub.scriptApi('/api/models', [{ status: 429, retryAfter: 30 }])
    await a!.call('/api/providers/huggingface/models?refresh=true')
    t.equal(hubListings(hub), 1)
    const onA = await health(a!, 'huggingface')
    t.equal(onA.status, 'rate_limited')
    for (const replica of [b!, c!]) {
      const status = (await replica.call('/api/system-status')).body
      t.match(providerIn(status, 'huggingface').health, { status: 'rate_limited', cooldown_until: onA.cooldown_until }, `${replica.name}'s system status shows A's cooldown`)
      t.equal((await replica.call('/api/providers/huggingface/models?refresh=true')).status, 503)
    }
    t.equal(hubListings(hub), 1, 'the Hub was sent nothing more')
  })
})

t.test('settings are the cluster\'s', async (t) => {
  const { redis, openrouter, replicas: [a, b, c] } = await cluster(t)

  t.test('a token rotated on A is the token of B and C the moment A answers, and hidden in their logs', async (t) => {
    const rotated = 'sk-or-v1-rotated-token-abcd'
    openrouter.setTokens([rotated])
    const put = await a!.call('/api/providers/openrouter/token', { method: 'PUT', body: JSON.stringify({ token: rotated, validate: false }) })
    t.equal(put.status, 200)
    for (const replica of [b!, c!]) {
      t.equal((await replica.call('/api/providers/openrouter')).body.token, 'sk-****abcd', `${replica.name} shows the new token, masked`)
    }
    openrouter.requests.length = 0
    t.equal((await b!.call('/api/providers/openrouter/check', { method: 'POST' })).body.checks.every((check: { ok: boolean }) => check.ok), true, 'B\'s calls carry it')
    t.ok(openrouter.requests.some((request) => request.authorization === `Bearer ${rotated}`))
    // C learnt it from Redis: a request line that carries it is redacted in C's log.
    await c!.call(`/api/providers/openrouter?leak=${rotated}`)
    await sleep(200)
    t.notOk(c!.server.stdout().includes(rotated), 'C never logs the token')
    t.match(c!.server.stdout(), /\[REDACTED\]/)
  })

  t.test('blocks and the default model are the same on every replica the moment the change is answered', async (t) => {
    const blocked = await a!.call('/api/providers/openrouter/models/block', { method: 'POST', body: JSON.stringify({ model_id: 'openai/gpt-4o-mini', reason: 'too expensive' }) })
    t.equal(blocked.status, 200)
    for (const replica of [b!, c!]) {
      const validated = await replica.call('/api/providers/openrouter/models/validate', { method: 'POST', body: JSON.stringify({ model_id: 'openai/gpt-4o-mini' }) })
      t.match(validated.body, { valid: false, reason: 'blocked: too expensive' }, `${replica.name} refuses the blocked model`)
    }
    const unblocked = await c!.call('/api/providers/openrouter/models/block?model_id=openai/gpt-4o-mini', { method: 'DELETE' })
    t.equal(unblocked.status, 200, 'C can lift the block A set')
    t.same((await b!.call('/api/providers/openrouter/diagnostics')).body.blocks, [], 'and B sees it lifted')
    t.equal((await a!.call('/api/providers/openrouter/models/block?model_id=openai/gpt-4o-mini', { method: 'DELETE' })).status, 404, 'A too')

    const set = await b!.call('/api/default-model', { method: 'PUT', body: JSON.stringify({ model_id: 'org/tiny' }) })
    t.equal(set.status, 200)
    for (const replica of [a!, c!]) t.match((await replica.call('/api/default-model')).body, { model_id: 'org/tiny', source: 'state' }, `${replica.name} has B's default`)
    await a!.call('/api/default-model', { method: 'PUT', body: JSON.stringify({ model_id: null }) })
    t.match((await c!.call('/api/default-model')).body, { model_id: null, source: 'state' }, 'cleared on A, cleared on C')
  })

  t.test('Redis away: every settings change answers 503 MD_STATE_STORE_UNAVAILABLE, reads go on from what the replica knew', async (t) => {
    await a!.call('/api/default-model', { method: 'PUT', body: JSON.stringify({ model_id: 'org/tiny' }) })
    await a!.call('/api/providers/openrouter/models/block', { method: 'POST', body: JSON.stringify({ model_id: 'openai/gpt-4o-mini' }) })
    await b!.call('/api/providers/openrouter') // B learns both
    await redis.stop()

    const changes: Array<[string, RequestInit]> = [
      ['/api/providers/openrouter/token', { method: 'PUT', body: JSON.stringify({ token: 'sk-or-v1-while-away-0000', validate: false }) }],
      ['/api/providers/openrouter/models/block', { method: 'POST', body: JSON.stringify({ model_id: 'meta-llama/llama-3.1-8b-instruct' }) }],
      ['/api/providers/openrouter/models/block?model_id=openai/gpt-4o-mini', { method: 'DELETE' }],
      ['/api/default-model', { method: 'PUT', body: JSON.stringify({ model_id: 'org/other' }) }]
    ]
    for (const [path, init] of changes) {
      const answer = await b!.call(path, init)
      t.equal(answer.status, 503, `${init.method} ${path} is refused`)
      t.equal(answer.body.code, 'MD_STATE_STORE_UNAVAILABLE')
      t.ok(Number(answer.headers.get('retry-after')) > 0, 'with Retry-After')
    }
    const provider = await b!.call('/api/providers/openrouter')
    t.equal(provider.status, 200, 'reads still answer')
    t.equal(provider.body.token, 'sk-****abcd', 'the token as it was: the refused rotation changed nothing')
    t.same((await b!.call('/api/providers/openrouter/diagnostics')).body.blocks.map((block: { model_id: string }) => block.model_id), ['openai/gpt-4o-mini'])
    t.match((await b!.call('/api/default-model')).body, { model_id: 'org/tiny' })
    t.equal((await b!.call('/api/providers/openrouter/models')).status, 200, 'provider calls go on')

    await redis.start()
    // Every replica reconnects on its own: A is read below, so both have to be back.
    await Promise.all([a!, b!].map(async (replica) => redisReady(replica)))
    const again = await b!.call('/api/default-model', { method: 'PUT', body: JSON.stringify({ model_id: 'org/other' }) })
    t.equal(again.status, 200, 'changes are taken again once Redis answers')
    t.match((await a!.call('/api/default-model')).body, { model_id: 'org/other' })
    for (const replica of [a!, b!]) t.equal(replica.server.child.exitCode, null, `${replica.name} is still running`)
    t.notMatch(a!.server.stderr() + b!.server.stderr(), /unhandled|UnhandledPromiseRejection/i)
  })
})
