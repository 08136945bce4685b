import t from 'tap'
import { auth } from '../helpers/app.js'
import { providersAndApp, type ProvidersAndApp } from '../helpers/providers.js'

t.test('the catalogue is cached for the TTL, refreshed on demand, and served stale when the upstream fails', async (t) => {
  const { app, openrouter, clock } = await providersAndApp(t)
  const get = async (query = ''): Promise<any> => (await app.inject({ url: `/api/providers/openrouter/models${query}`, headers: auth() })).json()
  const first = await get()
  t.match(first, { provider: 'openrouter', count: 3, stale: false, from_cache: false, fetched_at: '2026-11-22T12:00:00.000Z' })
  t.same(first.models.map((model: { id: string }) => model.id), ['meta-llama/llama-3.1-8b-instruct', 'mistralai/mistral-7b-instruct', 'openai/gpt-4o-mini'])
  const upstream = (): number => openrouter.requests.filter((request) => request.path.endsWith('/models')).length
  t.equal(upstream(), 1)
  t.match(await get(), { from_cache: true }, 'within the TTL')
  t.equal(upstream(), 1, 'no second upstream call')
  clock.now += 301_000
  t.match(await get(), { from_cache: false, fetched_at: '2026-11-22T12:05:01.000Z' }, 'after the TTL it is fetched again')
  t.match(await get('?refresh=true'), { from_cache: false })
  t.equal(upstream(), 3)

  openrouter.script('/models', [500])
  const stale = await get('?refresh=true')
  t.match(stale, { stale: true, count: 3, fetched_at: '2026-11-22T12:05:01.000Z' }, 'the last good list, marked stale')

  openrouter.script('/models', [{ status: 200, body: { unexpected: true } }])
  t.match(await get('?refresh=true'), { stale: true }, 'a list of an unknown shape is refused, not cached')
})

t.test('a catalogue answer that stalls halfway is a network failure after PROVIDER_TIMEOUT_MS, not a hang or a 500', async (t) => {
  const { app, openrouter } = await providersAndApp(t, { PROVIDER_TIMEOUT_MS: '2000' })
  const get = async (): Promise<{ statusCode: number, body: any }> => {
    const res = await app.inject({ url: '/api/providers/openrouter/models?refresh=true', headers: auth() })
    return { statusCode: res.statusCode, body: res.json() }
  }
  openrouter.stallNextAnswers()
  const first = await get()
  t.equal(first.statusCode, 502)
  t.match(first.body, { code: 'MD_PROVIDER_ERROR', message: /openrouter could not be reached .*ETIMEDOUT/ })
  t.match((await app.inject({ url: '/api/providers/openrouter', headers: auth() })).json(), { health: { last_error: { code: 'ETIMEDOUT' } } }, 'counted as the provider failing')

  t.match(await get(), { statusCode: 200, body: { stale: false, count: 3 } })
  openrouter.stallNextAnswers()
  t.match(await get(), { statusCode: 200, body: { stale: true, count: 3 } }, 'with a list from before, that list is served, marked stale')
})

t.test('an unreachable provider with no earlier list is a 502 that names it', async (t) => {
  const { app } = await providersAndApp(t, { OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' })
  const res = await app.inject({ url: '/api/providers/openai/models', headers: auth() })
  t.equal(res.statusCode, 502)
  t.match(res.json(), { code: 'MD_PROVIDER_ERROR', message: /openai could not be reached at http:\/\/127\.0\.0\.1:9\/v1/ })
})

t.test('validate answers valid, or why not with the closest alternatives; blocked models are left out', async (t) => {
  const { app } = await providersAndApp(t)
  const validate = async (name: string, modelId: string): Promise<any> =>
    (await app.inject({ method: 'POST', url: `/api/providers/${name}/models/validate`, headers: auth(), payload: { model_id: modelId } })).json()
  t.same(await validate('openrouter', 'openai/gpt-4o-mini'), { model_id: 'openai/gpt-4o-mini', valid: true, reason: null, alternatives: [] })
  const typo = await validate('openrouter', 'meta-llama/llama-3.1-8b-instrukt')
  t.match(typo, { valid: false, reason: /not in the openrouter catalogue/ })
  t.equal(typo.alternatives[0], 'meta-llama/llama-3.1-8b-instruct', 'the closest id first')

  const blocked = await app.inject({ method: 'POST', url: '/api/providers/openrouter/models/block', headers: auth(), payload: { model_id: 'openai/gpt-4o-mini', reason: 'too expensive' } })
  t.match(blocked.json(), { model_id: 'openai/gpt-4o-mini', reason: 'too expensive', at: String })
  t.match(await validate('openrouter', 'openai/gpt-4o-mini'), { valid: false, reason: 'blocked: too expensive' })
  const list = (await app.inject({ url: '/api/providers/openrouter/models', headers: auth() })).json()
  t.notOk(list.models.some((model: { id: string }) => model.id === 'openai/gpt-4o-mini'), 'left out of the list')
  const all = (await app.inject({ url: '/api/providers/openrouter/models?include_blocked=true', headers: auth() })).json()
  t.match(all.models.find((model: { id: string }) => model.id === 'openai/gpt-4o-mini'), { blocked: true, block_reason: 'too expensive' })
  t.equal((await app.inject({ method: 'DELETE', url: '/api/providers/openrouter/models/block?model_id=openai/gpt-4o-mini', headers: auth() })).statusCode, 200)
  const again = await app.inject({ method: 'DELETE', url: '/api/providers/openrouter/models/block?model_id=openai/gpt-4o-mini', headers: auth() })
  t.match(again.json(), { statusCode: 404, code: 'MD_MODEL_NOT_BLOCKED' }, 'not blocked any more')
  t.match(await validate('openrouter', 'openai/gpt-4o-mini'), { valid: true })

  t.match(await validate('huggingface', 'org/tiny'), { valid: true }, 'any model on the Hub is valid')
  t.match(await validate('huggingface', 'org/nope'), { valid: false })
  t.match(await validate('huggingface', '../whoami-v2'), { valid: false, reason: /model_id/ }, 'a malformed id is never put into a Hub URL')
  t.equal((await app.inject({ method: 'POST', url: '/api/providers/openrouter/models/validate', headers: auth(), payload: {} })).statusCode, 400)
})

t.test('blocks survive a restart; concurrent blocks all land', async (t) => {
  const cache = t.testdir()
  const blocks = async (app: ProvidersAndApp['app']): Promise<string[]> =>
    (await app.inject({ url: '/api/providers/openrouter/diagnostics', headers: auth() })).json().blocks.map((block: { model_id: string }) => block.model_id).sort()
  const first = await providersAndApp(t, { HF_HUB_CACHE: cache })
  await Promise.all(['openai/gpt-4o-mini', 'mistralai/mistral-7b-instruct'].map(async (modelId) =>
    first.app.inject({ method: 'POST', url: '/api/providers/openrouter/models/block', headers: auth(), payload: { model_id: modelId, reason: 'not here' } })))
  await first.app.close()

  const second = await providersAndApp(t, { HF_HUB_CACHE: cache })
  t.same(await blocks(second.app), ['mistralai/mistral-7b-instruct', 'openai/gpt-4o-mini'], 'both blocks came back')
  const validated = await second.app.inject({
    method: 'POST',
    url: '/api/providers/openrouter/models/validate',
    headers: auth(),
    payload: { model_id: 'openai/gpt-4o-mini' }
  })
  t.match(validated.json(), { valid: false, reason: 'blocked: not here' })
  t.equal((await second.app.inject({ method: 'DELETE', url: '/api/providers/openrouter/models/block?model_id=openai/gpt-4o-mini', headers: auth() })).statusCode, 200)
  await second.app.close()

  const third = await providersAndApp(t, { HF_HUB_CACHE: cache })
  t.same(await blocks(third.app), ['mistralai/mistral-7b-instruct'], 'the unblock was kept too')
  t.same((await third.app.inject({ url: '/api/providers/openai/diagnostics', headers: auth() })).json().blocks, [], 'blocks are per provider')
})

t.test('50 simultaneous calls respect maxConcurrent of their provider', async (t) => {
  const providersFile = t.testdir({ 'providers.json': JSON.stringify([{ name: 'openai', limiter: { max_concurrent: 3, min_time_ms: 0 } }]) })
  const { app, openai } = await providersAndApp(t, { PROVIDERS_FILE: `${providersFile}/providers.json` })
  // Slow answers, so that without the limiter many would be in flight at once.
  openai.script('/models', Array.from({ length: 50 }, () => ({ status: 200, delayMs: 40 })))
  await Promise.all(Array.from({ length: 25 }, async () => app.inject({ method: 'POST', url: '/api/providers/openai/check', headers: auth() })))
  t.equal(openai.requests.length, 50, 'every call reached the upstream')
  t.equal(openai.peakConcurrency(), 3, 'three at once, never more')
})

t.test('calls start minTime apart', async (t) => {
  const providersFile = t.testdir({ 'providers.json': JSON.stringify([{ name: 'openai', limiter: { max_concurrent: 3, min_time_ms: 10 } }]) })
  const { app, openai } = await providersAndApp(t, { PROVIDERS_FILE: `${providersFile}/providers.json` })
  await Promise.all(Array.from({ length: 25 }, async () => app.inject({ method: 'POST', url: '/api/providers/openai/check', headers: auth() })))
  t.equal(openai.requests.length, 50)
  // Arrival times jitter by a few ms on loopback, so the spacing is checked over the whole run.
  const starts = openai.requests.map((request) => request.startedAt).sort((a, b) => a - b)
  const span = starts.at(-1)! - starts[0]!
  t.ok(span >= 49 * 10 * 0.9, `50 calls spaced by minTime take at least ~490 ms (took ${span} ms)`)
  t.match((await app.inject({ url: '/api/providers/openai', headers: auth() })).json().limiter, { max_concurrent: 3, min_time_ms: 10 })
})

t.test('the Hugging Face catalogue is the Hub\'s text-generation models', async (t) => {
  const { app, hub } = await providersAndApp(t)
  const list = (await app.inject({ url: '/api/providers/huggingface/models', headers: auth() })).json()
  t.same(list.models.map((model: { id: string }) => model.id), ['org/tiny'], 'other tasks are left out')
  t.ok(hub.requests.some((request) => request.url.startsWith('/api/models?') && request.authorization === 'Bearer hf_provider_test_token_1234'))
})
