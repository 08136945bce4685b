import { existsSync, statfsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { auth } from '../helpers/app.js'
import { cachedModel } from '../helpers/cache-models.js'
import { C1, hubAndApp, startDownload, waitForBytes, waitForEnd } from '../helpers/downloads.js'

// Issue 19, the quota: CACHE_MAX_BYTES (and the watermarks) make a download evict whole models, least
// recently used first, never the default, pinned or downloading ones; when that is not enough, 507 at once.

const HOUR_S = 3600
const WEIGHTS = 200_000
const folder = (cacheDir: string, modelId: string): string => join(cacheDir, `models--${modelId.replace('/', '--')}`)

t.test('a download past CACHE_MAX_BYTES evicts the least recently used model that is not protected, and only as much as it needs', async (t) => {
  // 430 kB cached, and the download needs its 203 kB plus the 100 kB the slow one still has to write: 83 kB too many.
  const { app, hub, cacheDir, logs } = await hubAndApp(t, { CACHE_MAX_BYTES: '650000' }, WEIGHTS)
  // A model of its own still downloading (slowly): protected, though it is in the cache.
  hub.addRepo({ id: 'org/slow', revisions: { main: { commit: C1, files: [{ path: 'w.safetensors', content: Buffer.alloc(100_000, 3), lfs: true }] } } })
  hub.injectFault({ kind: 'slow', path: 'w.safetensors', bytesPerSecond: 1024 })
  const slow = await startDownload(app, { model_id: 'org/slow' })
  await waitForBytes(app, slow.job.job_id, 1)

  cachedModel(cacheDir, 'org/default', 100_000, 50 * HOUR_S)
  cachedModel(cacheDir, 'org/pinned', 100_000, 40 * HOUR_S)
  cachedModel(cacheDir, 'org/old', 150_000, 5 * HOUR_S)
  cachedModel(cacheDir, 'org/new', 80_000, 1 * HOUR_S)
  await app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: 'org/default' } })
  await app.inject({ method: 'PUT', url: '/api/models/pin', headers: auth(), payload: { model_id: 'org/pinned' } })

  const started = await startDownload(app, { model_id: 'org/tiny' })
  t.equal(started.statusCode, 202)
  t.equal((await waitForEnd(app, started.job.job_id)).status, 'complete')
  t.notOk(existsSync(folder(cacheDir, 'org/old')), 'the least recently used evictable model went')
  for (const kept of ['org/new', 'org/default', 'org/pinned', 'org/slow']) t.ok(existsSync(folder(cacheDir, kept)), `${kept} is kept`)

  const eviction = logs().find((line) => line.msg === 'model evicted from the cache to make room for a download')
  t.match(eviction, { component: 'cache', model_id: 'org/old', for_model: 'org/tiny', freed_bytes: Number })
  const metrics = (await app.inject({ url: '/metrics', headers: auth() })).body
  t.match(metrics, /^modeldepot_cache_evictions_total 1$/m, 'counted in the metrics')
  const status = (await app.inject({ url: '/api/system-status', headers: auth() })).json()
  t.match(status.recent_events, [{ kind: 'cache_eviction', model_id: 'org/old', message: /org\/old.*org\/tiny/ }], 'listed among the recent events')
  const cache = (await app.inject({ url: '/api/cache', headers: auth() })).json()
  t.equal(cache.max_bytes, 650000)
  await app.inject({ method: 'DELETE', url: `/api/downloads/${slow.job.job_id as string}`, headers: auth() })
})

t.test('when what may be evicted is not enough, the download fails at once with 507 and nothing is evicted', async (t) => {
  const { app, cacheDir } = await hubAndApp(t, { CACHE_MAX_BYTES: '250000' }, WEIGHTS)
  cachedModel(cacheDir, 'org/default', 100_000, 50 * HOUR_S)
  cachedModel(cacheDir, 'org/pinned', 100_000, 40 * HOUR_S)
  cachedModel(cacheDir, 'org/small', 10_000, 5 * HOUR_S)
  await app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: 'org/default' } })
  await app.inject({ method: 'PUT', url: '/api/models/pin', headers: auth(), payload: { model_id: 'org/pinned' } })
  const smallBytes = (await app.inject({ url: '/api/cache', headers: auth() })).json().eviction_order[0].size_bytes

  const res = await startDownload(app, { model_id: 'org/tiny' })
  t.equal(res.statusCode, 507)
  const body = res.job
  t.match(body, { statusCode: 507, code: 'MD_INSUFFICIENT_STORAGE', message: /org\/tiny/, hint: String })
  t.same(Object.keys(body.details).sort(), ['freeable_bytes', 'needed_bytes', 'protected'])
  t.equal(body.details.freeable_bytes, smallBytes, 'all that could go: the one model not protected')
  t.ok(body.details.needed_bytes > smallBytes)
  t.same(body.details.protected, [{ model_id: 'org/pinned', reason: 'pinned' }, { model_id: 'org/default', reason: 'default_model' }])
  t.ok(existsSync(folder(cacheDir, 'org/small')), 'nothing was evicted for a download that could not fit anyway')
  t.same((await app.inject({ url: '/api/downloads', headers: auth() })).json().jobs, [], 'and no job was made')
})

t.test('past CACHE_HIGH_WATERMARK with nothing to evict, the download is refused with 507', async (t) => {
  const stats = statfsSync(tmpdir())
  const usedPercent = 100 * (stats.blocks - stats.bavail) / stats.blocks
  t.ok(usedPercent > 2, 'the test volume is more than 2% used')
  const { app, cacheDir } = await hubAndApp(t, { CACHE_HIGH_WATERMARK: '2', CACHE_LOW_WATERMARK: '1' }, WEIGHTS)
  cachedModel(cacheDir, 'org/small', 10_000, 5 * HOUR_S)
  const res = await startDownload(app, { model_id: 'org/tiny' })
  t.equal(res.statusCode, 507)
  t.match(res.job.details, { needed_bytes: Number, freeable_bytes: Number, protected: [] })
  t.ok(existsSync(folder(cacheDir, 'org/small')), 'nothing evicted')
  const cache = (await app.inject({ url: '/api/cache', headers: auth() })).json()
  t.match(cache, { max_bytes: null, high_watermark_percent: 2, low_watermark_percent: 1 })
})
