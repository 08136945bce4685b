import { readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { CallbackReceiver } from '../fakes/callback-receiver.js'
import { FakeHub, sha256Hex } from '../fakes/fake-hub.js'
import { auth, buildTestApp, testStateDir } from '../helpers/app.js'
import { C1, C2, HF_TOKEN, startDownload, tinyModel, waitForBytes, waitForEnd } from '../helpers/downloads.js'

// Jobs survive a restart: the journal in {STATE_DIR}/jobs.json keeps what is unfinished
// (resumed by itself at the next start) and the recent history.

async function hubWithTiny (t: Test) {
  const hub = await FakeHub.start({ tokens: { [HF_TOKEN]: { name: 'reader', role: 'read' } } })
  t.teardown(() => hub.close())
  const model = tinyModel()
  hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: C1, files: model.main }, v2: { commit: C2, files: model.v2 } } })
  return { hub, model }
}

t.test('a shutdown leaves unfinished jobs in the journal; the next start resumes them by itself and fires their callback', async (t) => {
  const { hub, model } = await hubWithTiny(t)
  const receiver = await CallbackReceiver.start()
  t.teardown(() => receiver.close())
  const cache = t.testdir()
  const env = { HF_ENDPOINT: hub.url, HF_TOKEN, HF_HUB_CACHE: cache, CALLBACK_ALLOWED_HOSTS: '127.0.0.1', DOWNLOAD_RETRY_BASE_MS: '10', MAX_CONCURRENT_DOWNLOADS: '1' }
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 1024 * 1024 })

  const first = await buildTestApp(t, env)
  const running = (await startDownload(first.app, { model_id: 'org/tiny', callback_url: `${receiver.url}/running?token=abc` })).job
  const queued = (await startDownload(first.app, { model_id: 'org/tiny', revision: 'v2' })).job
  t.equal(queued.status, 'queued')
  await waitForBytes(first.app, running.job_id, 200_000)
  await first.app.close()
  t.equal(receiver.received.length, 0, 'no callback for a job that only paused')

  const journal = join(first.app.config.stateDir, 'jobs.json')
  t.equal(statSync(journal).mode & 0o777, 0o600, 'the journal is private: callback URLs carry tokens')
  const saved = JSON.parse(readFileSync(journal, 'utf8'))
  t.same(saved.unfinished.map((entry: { job: { job_id: string } }) => entry.job.job_id).sort(), [running.job_id, queued.job_id].sort())

  const bytesBefore = hub.bytesServed('model.safetensors')
  const second = await buildTestApp(t, env)
  await second.app.ready()
  const resumed = await waitForEnd(second.app, running.job_id)
  t.match(resumed, { job_id: running.job_id, status: 'complete', created_at: running.created_at }, 'the same job, finished without being asked again')
  t.equal((await waitForEnd(second.app, queued.job_id)).status, 'complete', 'the queued one too')
  t.same(readFileSync(join(cache, 'models--org--tiny', 'blobs', sha256Hex(model.weights))), model.weights, 'the weights are correct')
  t.ok(hub.bytesServed('model.safetensors') - bytesBefore < model.weights.length, 'resumed from the .incomplete file, not from zero')

  const [callback] = await receiver.waitFor(1)
  t.equal(callback!.path, '/running?token=abc', 'its callback fired when it really ended')
  t.match(JSON.parse(callback!.body), { job_id: running.job_id, status: 'complete' })
  const again = await startDownload(second.app, { model_id: 'org/tiny', revision: 'v2' })
  t.equal(again.job.status, 'complete', 'nothing is left to do')
})

t.test('finished jobs stay in the history across restarts, bounded by JOB_HISTORY_MAX and JOB_HISTORY_MAX_AGE_S', async (t) => {
  const { hub } = await hubWithTiny(t)
  const cache = t.testdir()
  const env = { HF_ENDPOINT: hub.url, HF_TOKEN, HF_HUB_CACHE: cache, JOB_HISTORY_MAX: '2' }
  const first = await buildTestApp(t, env)
  const ids: string[] = []
  for (const revision of ['main', 'v2', 'main']) {
    const { job } = await startDownload(first.app, { model_id: 'org/tiny', revision })
    ids.push((await waitForEnd(first.app, job.job_id)).job_id)
  }
  await first.app.close()

  const second = await buildTestApp(t, env)
  const listed = (await second.app.inject({ url: '/api/downloads', headers: auth() })).json().jobs
  t.same(listed.map((job: { job_id: string }) => job.job_id), [ids[2], ids[1]], 'the two newest, newest first')
  t.match((await second.app.inject({ url: `/api/downloads/${ids[2]!}`, headers: auth() })).json(), { status: 'complete', model_id: 'org/tiny' })
  await second.app.close()

  // A job that ended eight days ago is past the default week.
  const journalFile = join(first.app.config.stateDir, 'jobs.json')
  const journal = JSON.parse(readFileSync(journalFile, 'utf8'))
  const old = { ...journal.finished[1], job_id: '00000000-0000-4000-8000-000000000001', completed_at: new Date(Date.now() - 8 * 86_400_000).toISOString() }
  writeFileSync(journalFile, JSON.stringify({ ...journal, finished: [journal.finished[0], old] }))
  const third = await buildTestApp(t, { ...env, JOB_HISTORY_MAX: '100' })
  t.same((await third.app.inject({ url: '/api/downloads', headers: auth() })).json().jobs.map((job: { job_id: string }) => job.job_id), [ids[2]])
})

t.test('an unreadable journal is an empty one: the server starts', async (t) => {
  const cache = t.testdir()
  mkdirSync(testStateDir(cache), { recursive: true })
  writeFileSync(join(testStateDir(cache), 'jobs.json'), '{"version":1,"unfinished":[{"job":')
  const { app } = await buildTestApp(t, { HF_HUB_CACHE: cache })
  t.same((await app.inject({ url: '/api/downloads', headers: auth() })).json().jobs, [])
})
