import { mkdirSync, readdirSync, watch } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { FakeHub } from '../fakes/fake-hub.js'
import { auth, buildTestApp } from '../helpers/app.js'
import { cacheLeftovers } from '../helpers/cache-checks.js'
import { C1, C2, HF_TOKEN, startDownload, tinyModel, waitForBytes, waitForEnd, waitForJob } from '../helpers/downloads.js'

// huggingface_hub's scan_cache_dir() (and `hf cache scan`) skips only `.locks` among the entries of
// the cache root that are not repos, and warns about every other one. So through downloads, a cancel,
// deletes and a restart, modeldepot creates nothing there but `models--*` folders and `.locks`, not
// even for a moment: the root is watched for every entry made, and listed every 20 ms.

const allowed = (name: string): boolean => name.startsWith('models--') || name === '.locks'

t.test('through downloads, a cancel, deletes and a restart, nothing but models--* and .locks appears in the cache root', async (t) => {
  const hub = await FakeHub.start({ tokens: { [HF_TOKEN]: { name: 'reader', role: 'read' } } })
  t.teardown(() => hub.close())
  const model = tinyModel()
  hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: C1, files: model.main }, v2: { commit: C2, files: model.v2 } } })
  const slow = tinyModel(8 * 1024 * 1024)
  hub.addRepo({ id: 'org/slow', revisions: { main: { commit: C1, files: slow.main } } })

  // The default layout: HF_HOME, the cache in $HF_HOME/hub, the state in $HF_HOME/modeldepot.
  const home = t.testdir()
  const cache = join(home, 'hub')
  mkdirSync(cache)
  const seen = new Set<string>()
  const watcher = watch(cache, (_event, name) => { if (name !== null) seen.add(name.toString()) })
  const lister = setInterval(() => { for (const name of readdirSync(cache)) seen.add(name) }, 20)
  t.teardown(() => { watcher.close(); clearInterval(lister) })
  const env = { HF_HOME: home, HF_HUB_CACHE: '', HOME: home, HF_ENDPOINT: hub.url, HF_TOKEN, DOWNLOAD_RETRY_BASE_MS: '10', DOWNLOAD_PART_SIZE_MB: '1', DOWNLOAD_CONNECTIONS_PER_FILE: '3' }

  const first = await buildTestApp(t, env)
  t.equal(first.app.config.hubCacheDir, cache)
  t.equal(first.app.config.stateDir, join(home, 'modeldepot'))
  await first.app.ready()
  const health = async (app: typeof first.app): Promise<void> => {
    for (const url of ['/health', '/health/ready']) t.equal((await app.inject({ url })).statusCode, 200, url)
  }
  await health(first.app)
  t.equal((await first.app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: 'org/tiny' } })).statusCode, 200)
  for (const revision of ['main', 'v2']) {
    const { job } = await startDownload(first.app, { model_id: 'org/tiny', revision })
    t.equal((await waitForEnd(first.app, job.job_id)).status, 'complete', `org/tiny@${revision} downloaded`)
  }
  // A cancel that keeps its partials, then one that purges them. (Slow from here on: org/tiny is done.)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 1024 * 1024, times: 1000 })
  const kept = (await startDownload(first.app, { model_id: 'org/slow' })).job
  await waitForBytes(first.app, kept.job_id, 100_000)
  t.equal((await first.app.inject({ method: 'DELETE', url: `/api/downloads/${kept.job_id}`, headers: auth() })).statusCode, 200, 'cancelled')
  await waitForEnd(first.app, kept.job_id)
  await health(first.app)
  // Deletes: one revision (its snapshot goes through a trash), then a whole model.
  t.equal((await first.app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/tiny&revision=v2&force=true', headers: auth() })).statusCode, 200, 'a revision deleted')
  // A restart mid-download: the journal keeps the job, the next start resumes it.
  const resumed = (await startDownload(first.app, { model_id: 'org/slow' })).job
  await waitForJob(first.app, resumed.job_id, (job) => job.status === 'downloading', 'downloading')
  await first.app.close()

  const second = await buildTestApp(t, env)
  await second.app.ready()
  t.equal((await waitForEnd(second.app, resumed.job_id)).status, 'complete', 'the interrupted job completed after the restart')
  await health(second.app)
  t.equal((await second.app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/slow', headers: auth() })).statusCode, 200, 'a whole model deleted')
  const purged = (await startDownload(second.app, { model_id: 'org/slow' })).job
  await waitForBytes(second.app, purged.job_id, 100_000)
  t.equal((await second.app.inject({ method: 'DELETE', url: `/api/downloads/${purged.job_id}?purge=true`, headers: auth() })).statusCode, 200, 'cancelled with purge')
  await waitForEnd(second.app, purged.job_id)
  await second.app.close()
  await new Promise((resolve) => setTimeout(resolve, 100))

  t.ok(seen.has('models--org--tiny') && seen.has('.locks'), 'the watch saw the entries that are made')
  t.same([...seen].filter((name) => !allowed(name)), [], 'nothing else was ever in the cache root')
  t.same(readdirSync(cache).filter((name) => !allowed(name)), [])
  t.same(cacheLeftovers(cache), [], 'no partial, scratch or lock is left behind')
  t.ok(readdirSync(join(home, 'modeldepot')).includes('jobs.json'), 'the state is in $HF_HOME/modeldepot')
})
