import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { auth, buildTestApp } from '../helpers/app.js'
import { cachedModel, filesBytes } from '../helpers/cache-models.js'
import { hubAndApp, startDownload, waitForBytes } from '../helpers/downloads.js'

// Issue 19, the disk: pins (PUT/DELETE /api/models/pin) and GET /api/cache with its eviction order.

const HOUR_S = 3600

t.test('a model neither cached nor downloading cannot be pinned: 404 MD_MODEL_NOT_CACHED, and nothing is kept', async (t) => {
  const { app } = await buildTestApp(t)
  const res = await app.inject({ method: 'PUT', url: '/api/models/pin', headers: auth(), payload: { model_id: 'org/absent' } })
  t.equal(res.statusCode, 404)
  t.match(res.json(), { code: 'MD_MODEL_NOT_CACHED', message: /org\/absent/, hint: /GET \/api\/models/ })
  const bad = await app.inject({ method: 'PUT', url: '/api/models/pin', headers: auth(), payload: { model_id: '../etc' } })
  t.equal(bad.statusCode, 400, 'an id that is no repo id is a 400')
  const missing = await app.inject({ method: 'PUT', url: '/api/models/pin', headers: auth() })
  t.match(missing.json(), { statusCode: 400, code: 'MD_VALIDATION_FAILED', message: 'model_id is required (in query string or body)' })
  const cache = (await app.inject({ url: '/api/cache', headers: auth() })).json()
  t.same(cache.eviction_order, [])
})

t.test('a pin survives a restart, shows in GET /api/models and protects the model in the eviction order', async (t) => {
  const first = await buildTestApp(t)
  const cacheDir = first.app.config.hubCacheDir
  cachedModel(cacheDir, 'org/keep', 1000, 5 * HOUR_S)
  cachedModel(cacheDir, 'org/other', 1000, 4 * HOUR_S)

  const pinned = await first.app.inject({ method: 'PUT', url: '/api/models/pin?model_id=org/other', headers: auth(), payload: { model_id: 'org/keep' } })
  t.equal(pinned.statusCode, 200, 'the body wins over the query string')
  t.match(pinned.json(), { model_id: 'org/keep', pinned: true, pinned_at: String })
  const again = await first.app.inject({ method: 'PUT', url: '/api/models/pin', headers: auth(), payload: { model_id: 'org/keep' } })
  t.equal(again.json().pinned_at, pinned.json().pinned_at, 'pinning twice keeps the first pin')
  await first.app.close()

  const second = await buildTestApp(t, { HF_HUB_CACHE: cacheDir })
  const models = (await second.app.inject({ url: '/api/models', headers: auth() })).json().models
  t.same(models.map((model: { model_id: string, pinned: boolean }) => [model.model_id, model.pinned]), [['org/keep', true], ['org/other', false]])
  const order = (await second.app.inject({ url: '/api/cache', headers: auth() })).json().eviction_order
  t.same(order.map((model: { model_id: string, protected: string | null }) => [model.model_id, model.protected]), [['org/other', null], ['org/keep', 'pinned']],
    'the pinned model is older, yet the other one goes first')

  const unpinned = await second.app.inject({ method: 'DELETE', url: '/api/models/pin?model_id=org/keep', headers: auth() })
  t.same(unpinned.json(), { model_id: 'org/keep', pinned: false, pinned_at: null })
  const after = (await second.app.inject({ url: '/api/cache', headers: auth() })).json().eviction_order
  t.same(after.map((model: { model_id: string }) => model.model_id), ['org/keep', 'org/other'], 'unpinned, the least recently used goes first')
  const twice = await second.app.inject({ method: 'DELETE', url: '/api/models/pin', headers: auth(), payload: { model_id: 'org/keep' } })
  t.equal(twice.statusCode, 200, 'unpinning what is not pinned answers the same')
})

t.test('GET /api/cache: every file counts, least recently used first, the default model, pinned and downloading models protected', async (t) => {
  const { app, hub, cacheDir } = await hubAndApp(t)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 256 * 1024 })
  const download = await startDownload(app, { model_id: 'org/tiny' })
  await waitForBytes(app, download.job.job_id, 1)

  cachedModel(cacheDir, 'org/oldest', 2000, 10 * HOUR_S)
  cachedModel(cacheDir, 'org/older', 3000, 8 * HOUR_S)
  cachedModel(cacheDir, 'org/newer', 4000, 1 * HOUR_S)
  cachedModel(cacheDir, 'org/default', 5000, 20 * HOUR_S)
  cachedModel(cacheDir, 'org/pinned', 6000, 30 * HOUR_S)
  // Read long ago by atime, but modeldepot made it the default a moment ago: that is its last use.
  cachedModel(cacheDir, 'org/used', 7000, 40 * HOUR_S)
  const before = Date.now()
  t.equal((await app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: 'org/used' } })).statusCode, 200)
  t.equal((await app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: 'org/default' } })).statusCode, 200)
  t.equal((await app.inject({ method: 'PUT', url: '/api/models/pin', headers: auth(), payload: { model_id: 'org/pinned' } })).statusCode, 200)
  // Files no model owns count too: another tool's lock, a stray file.
  mkdirSync(join(cacheDir, '.locks', 'models--org--oldest'), { recursive: true })
  writeFileSync(join(cacheDir, '.locks', 'models--org--oldest', 'abc.lock'), 'x'.repeat(123))

  const res = await app.inject({ url: '/api/cache', headers: auth() })
  t.equal(res.statusCode, 200)
  const cache = res.json()
  const order = cache.eviction_order as Array<{ model_id: string, size_bytes: number, last_used_at: string | null, protected: string | null }>
  t.same(order.slice(0, 4).map((model) => [model.model_id, model.protected]), [
    ['org/oldest', null],
    ['org/older', null],
    ['org/newer', null],
    ['org/used', null]
  ], 'the evictable ones first, least recently used first')
  t.same(order.slice(4).map((model) => [model.model_id, model.protected]).sort(), [
    ['org/default', 'default_model'],
    ['org/pinned', 'pinned'],
    ['org/tiny', 'active_job']
  ], 'then the protected ones, each with its reason')
  const used = order.find((model) => model.model_id === 'org/used')!
  t.ok(Date.parse(used.last_used_at!) >= before - 1000, 'made the default counts as a use, though its atime is 40 hours old')
  const oldest = order[0]!
  t.ok(Math.abs(Date.parse(oldest.last_used_at!) - (Date.now() - 10 * HOUR_S * 1000)) < 60_000, 'otherwise the newest atime of its blobs')
  t.equal(oldest.size_bytes, filesBytes(join(cacheDir, 'models--org--oldest')), 'a model is all of its folder')
  t.ok(oldest.size_bytes > 2000)
  // The download still writes: measure the cache once it is over.
  await app.inject({ method: 'DELETE', url: `/api/downloads/${download.job.job_id as string}`, headers: auth() })
  const settled = (await app.inject({ url: '/api/cache', headers: auth() })).json()
  t.equal(settled.size_bytes, filesBytes(cacheDir), 'size_bytes is every file under the cache, the lock and the partial included')
  t.match(settled, {
    cache_dir: cacheDir, max_bytes: null, high_watermark_percent: null, low_watermark_percent: null, disk_total_bytes: Number, disk_free_bytes: Number
  })
  t.equal(cache.disk_used_percent > 0 && cache.disk_used_percent <= 100, true)
})

t.test('a model still downloading may be pinned', async (t) => {
  const { app, hub } = await hubAndApp(t)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 256 * 1024 })
  const download = await startDownload(app, { model_id: 'org/tiny' })
  const res = await app.inject({ method: 'PUT', url: '/api/models/pin', headers: auth(), payload: { model_id: 'org/tiny' } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().pinned, true)
  await app.inject({ method: 'DELETE', url: `/api/downloads/${download.job.job_id as string}`, headers: auth() })
})
