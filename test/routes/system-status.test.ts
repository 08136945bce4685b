import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { auth, buildTestApp } from '../helpers/app.js'
import { hubAndApp, startDownload, waitForBytes, waitForEnd } from '../helpers/downloads.js'
import { providersAndApp } from '../helpers/providers.js'

const status = async (app: Awaited<ReturnType<typeof buildTestApp>>['app']): Promise<any> => {
  const res = await app.inject({ url: '/api/system-status', headers: auth() })
  if (res.statusCode !== 200) throw new Error(res.body)
  return res.json()
}

t.test('a quiet node is healthy and says what it is', async (t) => {
  const { app } = await buildTestApp(t)
  const body = await status(app)
  t.match(body, {
    overall_health: 'healthy',
    reasons: [],
    version: /^\d+\.\d+\.\d+/,
    uptime_s: Number,
    models: { local_count: 0, total_bytes: 0, default_model: null, active_downloads: 0, queued_downloads: 0 },
    infrastructure: {
      cache_dir: app.config.hubCacheDir,
      disk: { total_bytes: Number, free_bytes: Number, used_percent: Number },
      memory: { rss_bytes: Number },
      cpu: { cores: Number },
      node_version: process.version,
      pid: process.pid
    },
    errors: { window_s: 300, total: 0, recent: [] }
  })
  t.equal(body.providers.length, 3)
})

t.test('a rate-limited provider makes the node degraded, with its error in the window', async (t) => {
  const { app, openrouter } = await providersAndApp(t)
  openrouter.script('/models', [{ status: 429, retryAfter: 90 }])
  await app.inject({ url: '/api/providers/openrouter/models', headers: auth() })
  const body = await status(app)
  t.equal(body.overall_health, 'degraded')
  t.match(body.reasons, [/provider openrouter is rate_limited until .* after HTTP_429/])
  t.match(body.errors, { total: 1, by_provider: { openrouter: { count: 1, by_status: { 429: 1 } } }, recent: [{ provider: 'openrouter', status: 429, code: 'HTTP_429', action: 'backed_off' }] })
  t.equal(body.providers.find((provider: { name: string }) => provider.name === 'openrouter').health.status, 'rate_limited')
})

t.test('performance: request timings overall and by route, the fastest provider, the catalogue hit rate', async (t) => {
  const { app } = await providersAndApp(t)
  for (let i = 0; i < 3; i++) await app.inject({ url: '/api/providers/openai/models', headers: auth() })
  await app.inject({ url: '/api/providers', headers: auth() })
  const { performance } = await status(app)
  t.ok(performance.requests >= 4)
  t.match(performance.busiest_routes[0], { route: 'GET /api/providers/:name/models', requests: 3, avg_ms: Number, p95_ms: Number })
  t.equal(performance.fastest_provider, 'openai')
  t.equal(performance.catalogue_cache_hit_rate, 0.667, 'two of three lookups came from the cache')
})

t.test('a running download shows in active_downloads; the finished model in the counts', async (t) => {
  const { app, hub } = await hubAndApp(t)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 2 * 1024 * 1024 })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  await waitForBytes(app, job.job_id as string, 100_000)
  t.match((await status(app)).models, { active_downloads: 1, queued_downloads: 0 })
  await waitForEnd(app, job.job_id as string)
  t.match((await status(app)).models, { active_downloads: 0, local_count: 1, total_bytes: Number }, 'the scan was refreshed when the download ended')
})

t.test('a cache directory that cannot be written makes the node unhealthy', async (t) => {
  const dir = t.testdir({})
  writeFileSync(join(dir, 'a-file'), 'x')
  const { app } = await buildTestApp(t, { HF_HUB_CACHE: join(dir, 'a-file', 'hub') })
  const body = await status(app)
  t.equal(body.overall_health, 'unhealthy')
  t.match(body.reasons, [/cache directory cannot be created or written/])
})

t.test('/metrics: Prometheus text behind the API key, or open with METRICS_PUBLIC=true', async (t) => {
  const { app, hub } = await hubAndApp(t)
  t.equal((await app.inject({ url: '/metrics' })).statusCode, 401)
  await waitForEnd(app, (await startDownload(app, { model_id: 'org/tiny' })).job.job_id)
  const res = await app.inject({ url: '/metrics', headers: auth() })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  const text = res.body
  t.match(text, /modeldepot_http_request_duration_seconds_count\{method="POST",route="\/api\/download-model",status_code="202"\} 1/)
  t.match(text, new RegExp(`modeldepot_download_bytes_total ${hub.bytesServed()}`))
  t.match(text, /modeldepot_download_jobs\{state="active"\} 0/)
  t.match(text, /modeldepot_provider_status\{provider="huggingface",status="online"\} 1/)
  t.match(text, /modeldepot_provider_rate_limited_total\{provider="openrouter"\} 0/)
  t.match(text, /modeldepot_cache_size_bytes [1-9]\d*/)
  t.match(text, /modeldepot_disk_free_bytes [1-9]/)

  const open = await buildTestApp(t, { METRICS_PUBLIC: 'true' })
  t.equal((await open.app.inject({ url: '/metrics' })).statusCode, 200)
})
