import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { Agent, request } from 'undici'
import { sha256Hex } from '../fakes/fake-hub.js'
import { auth, buildTestApp } from '../helpers/app.js'
import { C1, hubAndApp, incompleteFiles, startDownload, waitForBytes, waitForEnd } from '../helpers/downloads.js'

const SLOW = 2 * 1024 * 1024 // bytes per second: a 3 MiB file takes long enough to act on

t.test('cancel keeps the partial file, and the same request resumes where it stopped', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: SLOW })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  const moving = await waitForBytes(app, job.job_id, 600_000)
  t.equal(moving.status, 'downloading')
  // The small files may still be in flight on a loaded machine; the weights surely are.
  t.ok(moving.current_files.includes('model.safetensors'), 'the file in flight is named')
  t.ok(moving.speed_bps > 0, 'a speed is reported while it moves')

  const cancelled = await app.inject({ method: 'DELETE', url: `/api/downloads/${job.job_id}`, headers: auth() })
  t.equal(cancelled.statusCode, 200)
  t.match(cancelled.json(), { status: 'cancelled', completed_at: String })
  t.equal(incompleteFiles(cacheDir, 'org/tiny').length, 1, 'the partial stays')
  t.notOk(existsSync(join(cacheDir, 'models--org--tiny', 'refs', 'main')), 'no ref for a snapshot that is not complete')
  const servedBefore = hub.bytesServed('model.safetensors')

  const resumed = await startDownload(app, { model_id: 'org/tiny' })
  t.equal(resumed.statusCode, 202, 'a new job')
  t.not(resumed.job.job_id, job.job_id)
  t.ok(resumed.job.bytes_downloaded >= 600_000, 'it starts from the bytes already there')
  const done = await waitForEnd(app, resumed.job.job_id)
  t.equal(done.status, 'complete')
  t.same(readFileSync(join(cacheDir, 'models--org--tiny', 'blobs', sha256Hex(model.weights))), model.weights)
  const served = hub.bytesServed('model.safetensors')
  t.ok(served - servedBefore < model.weights.length, 'only the missing bytes came down the second time')
  t.ok(served <= model.weights.length + 256 * 1024, 'in all, about one copy of the file')
})

t.test('cancel with purge=true deletes the partial data; cancelling a finished job changes nothing', async (t) => {
  const { app, hub, cacheDir } = await hubAndApp(t)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: SLOW })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  await waitForBytes(app, job.job_id, 300_000)
  const res = await app.inject({ method: 'DELETE', url: `/api/downloads/${job.job_id}?purge=true`, headers: auth() })
  t.equal(res.json().status, 'cancelled')
  t.same(incompleteFiles(cacheDir, 'org/tiny'), [], 'no partial left')
  const again = await app.inject({ method: 'DELETE', url: `/api/downloads/${job.job_id}`, headers: auth() })
  t.equal(again.statusCode, 200)
  t.equal(again.json().completed_at, res.json().completed_at)
  t.equal((await app.inject({ method: 'DELETE', url: '/api/downloads/no-such-job', headers: auth() })).statusCode, 404)
})

t.test('progress: the latest job with counts, by job_id or model_id, and 404s', async (t) => {
  const { app, hub } = await hubAndApp(t, { MAX_CONCURRENT_DOWNLOADS: '1' })
  hub.addRepo({ id: 'org/other', revisions: { main: { commit: C1, files: [{ path: 'a.txt', content: 'hello' }] } } })
  t.equal((await app.inject({ url: '/api/download-progress', headers: auth() })).statusCode, 404, 'nothing started yet')

  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: SLOW })
  const first = await startDownload(app, { model_id: 'org/tiny' })
  const second = await startDownload(app, { model_id: 'org/other' })
  t.equal(second.job.status, 'queued', 'one job at a time: the second waits')

  const latest = (await app.inject({ url: '/api/download-progress', headers: auth() })).json()
  t.match(latest, { job_id: second.job.job_id, status: 'queued', active_downloads: 1, queued_downloads: 1 })
  const byModel = (await app.inject({ url: '/api/download-progress?model_id=org/tiny', headers: auth() })).json()
  t.equal(byModel.job_id, first.job.job_id)
  t.equal((await app.inject({ url: '/api/download-progress?model_id=org/never', headers: auth() })).statusCode, 404)
  t.equal((await app.inject({ url: '/api/download-progress?job_id=nope', headers: auth() })).statusCode, 404)
  t.equal((await app.inject({ url: '/api/download-progress?wait=61', headers: auth() })).statusCode, 400, 'wait is at most 60')

  const list = (await app.inject({ url: '/api/downloads', headers: auth() })).json()
  t.same(list.jobs.map((job: { job_id: string }) => job.job_id), [second.job.job_id, first.job.job_id], 'newest first')
  t.equal((await app.inject({ url: `/api/downloads/${first.job.job_id}`, headers: auth() })).json().model_id, 'org/tiny')

  const waited = (await app.inject({ url: `/api/download-progress?job_id=${second.job.job_id}&wait=30`, headers: auth() })).json()
  t.equal(waited.status, 'complete', 'wait held the answer until the queued job ran and finished')
  t.equal((await waitForEnd(app, first.job.job_id)).status, 'complete')
})

t.test('a model whose download is running cannot be deleted, unless force=true cancels it', async (t) => {
  const { app, hub, cacheDir } = await hubAndApp(t)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: SLOW })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  await waitForBytes(app, job.job_id, 200_000)
  const refused = await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/tiny', headers: auth() })
  t.equal(refused.statusCode, 409)
  t.match(refused.json(), { code: 'MD_MODEL_PROTECTED', message: /download .* is running/ })
  const forced = await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/tiny&force=true', headers: auth() })
  t.equal(forced.statusCode, 200)
  t.same(forced.json().cancelled_jobs, [job.job_id])
  t.ok(forced.json().partial_bytes >= 200_000, 'the partial data is answered apart from the blobs')
  t.equal((await app.inject({ url: `/api/downloads/${job.job_id}`, headers: auth() })).json().status, 'cancelled')
  t.notOk(existsSync(join(cacheDir, 'models--org--tiny')))
})

t.test('shutdown stops running jobs and keeps their partial files; after a restart the same request resumes', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: SLOW })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  await waitForBytes(app, job.job_id, 500_000)
  await app.close()
  t.equal(incompleteFiles(cacheDir, 'org/tiny').length, 1, 'the partial survives the shutdown')

  const restarted = await buildTestApp(t, { HF_ENDPOINT: hub.url, HF_TOKEN: 'hf_test_reader_token', HF_HUB_CACHE: cacheDir })
  const again = await startDownload(restarted.app, { model_id: 'org/tiny' })
  const done = await waitForEnd(restarted.app, again.job.job_id)
  t.equal(done.status, 'complete')
  t.ok(done.bytes_transferred < model.weights.length, 'only the missing bytes were fetched')
  t.same(readFileSync(join(cacheDir, 'models--org--tiny', 'blobs', sha256Hex(model.weights))), model.weights)
})

t.test('two replicas on one volume fetch a blob once: the second waits for the first', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t)
  const replica = await buildTestApp(t, { HF_ENDPOINT: hub.url, HF_TOKEN: 'hf_test_reader_token', HF_HUB_CACHE: cacheDir })
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: SLOW * 2 })
  const [one, two] = await Promise.all([startDownload(app, { model_id: 'org/tiny' }), startDownload(replica.app, { model_id: 'org/tiny' })])
  const [doneOne, doneTwo] = await Promise.all([waitForEnd(app, one.job.job_id), waitForEnd(replica.app, two.job.job_id)])
  t.equal(doneOne.status, 'complete')
  t.equal(doneTwo.status, 'complete')
  t.equal(hub.bytesServed('model.safetensors'), model.weights.length, 'the weights came down once')
  t.equal(doneOne.bytes_transferred + doneTwo.bytes_transferred, hub.bytesServed(), 'what one fetched, the other did not')
  t.same(readFileSync(join(cacheDir, 'models--org--tiny', 'blobs', sha256Hex(model.weights))), model.weights)
})

t.test('cancelling a job that waits for a blob another job is fetching stops it at once', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: SLOW })
  const main = await startDownload(app, { model_id: 'org/tiny' })
  await waitForBytes(app, main.job.job_id, 300_000)
  const v2 = await startDownload(app, { model_id: 'org/tiny', revision: 'v2' })
  await new Promise((resolve) => setTimeout(resolve, 200))
  const cancelled = await app.inject({ method: 'DELETE', url: `/api/downloads/${v2.job.job_id as string}?purge=true`, headers: auth() })
  t.match(cancelled.json(), { status: 'cancelled', current_files: [] })
  t.equal((await app.inject({ url: `/api/downloads/${main.job.job_id as string}`, headers: auth() })).json().status, 'downloading', 'the cancel did not wait for the other job to finish')
  const done = await waitForEnd(app, main.job.job_id)
  t.equal(done.status, 'complete', 'the other job finished')
  t.equal(hub.bytesServed('model.safetensors'), model.weights.length, 'purge left the partial the other job was writing alone')
  t.notOk(existsSync(join(cacheDir, 'models--org--tiny', 'refs', 'v2')), 'no ref for the cancelled revision')
  const after = (await app.inject({ url: `/api/downloads/${v2.job.job_id as string}`, headers: auth() })).json()
  t.equal(after.updated_at, cancelled.json().updated_at, 'nothing touched the job after it ended')
})

t.test('wait=N answers a job still running once N seconds pass', async (t) => {
  const { app, hub } = await hubAndApp(t)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 256 * 1024 })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  const started = Date.now()
  const waited = (await app.inject({ url: `/api/download-progress?job_id=${job.job_id as string}&wait=1`, headers: auth() })).json()
  t.ok(Date.now() - started >= 900, 'it held the answer')
  t.equal(waited.status, 'downloading')
  await app.inject({ method: 'DELETE', url: `/api/downloads/${job.job_id as string}`, headers: auth() })
})

t.test('jobs beyond MAX_CONCURRENT_DOWNLOADS run in the order they came', async (t) => {
  const { app, hub } = await hubAndApp(t, { MAX_CONCURRENT_DOWNLOADS: '1' })
  for (const name of ['org/a', 'org/b', 'org/c']) hub.addRepo({ id: name, revisions: { main: { commit: C1, files: [{ path: 'f.txt', content: name }] } } })
  const jobs = []
  for (const name of ['org/a', 'org/b', 'org/c']) jobs.push((await startDownload(app, { model_id: name })).job)
  const ended = []
  for (const job of jobs) ended.push(await waitForEnd(app, job.job_id as string))
  t.ok(ended.every((job) => job.status === 'complete'))
  const starts = ended.map((job) => Date.parse(job.started_at as string))
  t.ok(starts[0]! <= starts[1]! && starts[1]! <= starts[2]!, 'started in order')
  t.ok(Date.parse(ended[0]!.completed_at as string) <= starts[1]!, 'one at a time')
})

t.test('a shutdown ends running jobs as cancelled with MD_SERVER_SHUTDOWN', async (t) => {
  const { app, hub } = await hubAndApp(t)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: SLOW })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  await waitForBytes(app, job.job_id as string, 100_000)
  await app.close()
  t.match(await app.jobStore.get(job.job_id as string), { status: 'cancelled', error: { code: 'MD_SERVER_SHUTDOWN', message: /resumes where it stopped when the server starts again/ } })
})

t.test('a long poll answered during a shutdown closes its kept-alive connection, so the shutdown does not wait for it', async (t) => {
  const { app, hub } = await hubAndApp(t)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: SLOW })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  await waitForBytes(app, job.job_id as string, 100_000)
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const agent = new Agent({ keepAliveTimeout: 60_000 })
  t.teardown(() => agent.close())
  // A kept-alive connection, then a long poll on it that is in flight when the shutdown starts.
  await request(`${address}/health/live`, { dispatcher: agent }).then(async (res) => res.body.dump())
  const poll = request(`${address}/api/download-progress?job_id=${job.job_id as string}&wait=30`, { dispatcher: agent, headers: auth() })
  await new Promise((resolve) => setTimeout(resolve, 200))
  const closed = app.close()
  const answer = await poll
  t.equal(answer.statusCode, 200, 'the long poll is answered as its job stops')
  t.equal(answer.headers.connection, 'close', 'and its connection closed after it')
  await answer.body.dump()
  t.equal(await Promise.race([closed.then(() => 'closed'), new Promise((resolve) => setTimeout(resolve, 5000, 'still waiting'))]), 'closed')
})
