import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { FakeHub, sha256Hex } from '../fakes/fake-hub.js'
import { auth, buildTestApp, testStateDir } from '../helpers/app.js'
import { C1, HF_TOKEN, startDownload, tinyModel, waitForBytes, waitForEnd } from '../helpers/downloads.js'

// An older modeldepot kept its state in {cache}/.modeldepot/, which huggingface_hub's scan_cache_dir()
// warns about. The first start with STATE_DIR moves it there, once, losing no setting and no job.

t.test('an old-layout .modeldepot/ in the cache moves to STATE_DIR at start-up: default model, block and unfinished job kept', async (t) => {
  const hub = await FakeHub.start({ tokens: { [HF_TOKEN]: { name: 'reader', role: 'read' } } })
  t.teardown(() => hub.close())
  const model = tinyModel()
  hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: C1, files: model.main } } })
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 1024 * 1024 })
  const cache = t.testdir()
  const legacy = join(cache, '.modeldepot')
  const env = { HF_ENDPOINT: hub.url, HF_TOKEN, HF_HUB_CACHE: cache, DOWNLOAD_RETRY_BASE_MS: '10' }

  // The old layout, in the old version's very file formats: its state folder was {cache}/.modeldepot.
  const old = await buildTestApp(t, { ...env, STATE_DIR: legacy })
  t.equal((await old.app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: 'org/tiny' } })).statusCode, 200)
  const blocked = await old.app.inject({ method: 'POST', url: '/api/providers/huggingface/models/block', headers: auth(), payload: { model_id: 'org/banned', reason: 'licence' } })
  t.equal(blocked.statusCode, 200, 'a block')
  const running = (await startDownload(old.app, { model_id: 'org/tiny' })).job
  await waitForBytes(old.app, running.job_id, 100_000)
  await old.app.close()
  // …with the scratch and the health probe it also kept there. (It kept no last-use records: this version's go.)
  writeFileSync(join(legacy, 'probe-0b5e'), '')
  rmSync(join(legacy, 'last-use.json'), { force: true })
  t.same(readdirSync(legacy).filter((name) => name.endsWith('.json')).sort(), ['blocks.json', 'jobs.json', 'state.json'], 'the old layout holds the three state files')
  const journalBefore = JSON.parse(readFileSync(join(legacy, 'jobs.json'), 'utf8'))
  t.same(journalBefore.unfinished.map((entry: { job: { job_id: string } }) => entry.job.job_id), [running.job_id], 'with the unfinished job')

  const { app, logs } = await buildTestApp(t, env)
  const stateDir = testStateDir(cache)
  t.equal(app.config.stateDir, stateDir)
  t.notOk(existsSync(legacy), '.modeldepot is gone from the cache root')
  t.same(readdirSync(cache).filter((name) => !name.startsWith('models--') && name !== '.locks'), [], 'nothing but models--* and .locks in the cache root')
  t.same(readdirSync(stateDir).filter((name) => name.endsWith('.json')).sort(), ['blocks.json', 'jobs.json', 'state.json'], 'the state files are in STATE_DIR')
  t.equal(statSync(join(stateDir, 'jobs.json')).mode & 0o777, 0o600, 'the journal stays private')
  t.ok(logs().some((line) => typeof line.msg === 'string' && line.msg.includes('moved modeldepot\'s state out of the model cache')), 'the move is logged')

  t.match((await app.inject({ url: '/api/default-model', headers: auth() })).json(), { model_id: 'org/tiny', source: 'state' }, 'the same default model')
  const diagnostics = (await app.inject({ url: '/api/providers/huggingface/diagnostics', headers: auth() })).json()
  t.match(diagnostics.blocks, [{ model_id: 'org/banned', reason: 'licence' }], 'the same block')
  await app.ready()
  const resumed = await waitForEnd(app, running.job_id)
  t.match(resumed, { job_id: running.job_id, status: 'complete', created_at: running.created_at }, 'the unfinished job resumed by itself and completed')
  t.same(readFileSync(join(cache, 'models--org--tiny', 'blobs', sha256Hex(model.weights))), model.weights, 'with the right bytes')
  await app.close()

  // Once: the next start finds nothing to move and keeps what is in STATE_DIR.
  const again = await buildTestApp(t, env)
  t.notOk(existsSync(legacy))
  t.match((await again.app.inject({ url: '/api/default-model', headers: auth() })).json(), { model_id: 'org/tiny', source: 'state' })
  t.match((await again.app.inject({ url: `/api/downloads/${running.job_id}`, headers: auth() })).json(), { status: 'complete' }, 'the job is in the history')
})

t.test('a state file STATE_DIR already has wins; the old one is kept beside it, not lost', async (t) => {
  const cache = t.testdir({ '.modeldepot': { 'state.json': JSON.stringify({ default_model: 'org/old', updated_at: '2026-01-01T00:00:00.000Z' }), tmp: { x: '' } } })
  const first = await buildTestApp(t, { HF_HUB_CACHE: join(cache, 'elsewhere') })
  t.equal((await first.app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: 'org/new' } })).statusCode, 200)
  await first.app.close()
  const stateDir = first.app.config.stateDir
  const { app } = await buildTestApp(t, { HF_HUB_CACHE: cache, STATE_DIR: stateDir })
  t.notOk(existsSync(join(cache, '.modeldepot')), 'the old folder is gone')
  t.match((await app.inject({ url: '/api/default-model', headers: auth() })).json(), { model_id: 'org/new' }, 'the newer setting holds')
  t.match(JSON.parse(readFileSync(join(stateDir, 'legacy-state.json'), 'utf8')), { default_model: 'org/old' }, 'the old one is kept as legacy-state.json')
})
