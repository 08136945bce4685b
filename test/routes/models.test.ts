import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { auth, buildTestApp } from '../helpers/app.js'
import { gitSha1, sha256, writeCachedSnapshot } from '../helpers/hf-cache.js'

const C1 = 'a'.repeat(40)
const C2 = 'b'.repeat(40)
const WEIGHTS = 'w'.repeat(4096)
const CONFIG = '{"model_type":"llama"}'

/** A cache with one model in two revisions sharing a blob, as another tool left it. */
async function cacheWithModels (t: Test, env: Record<string, string> = {}) {
  const built = await buildTestApp(t, env)
  const cacheDir = built.app.config.hubCacheDir
  writeCachedSnapshot(cacheDir, 'org/llama', C1, [
    { path: 'config.json', content: CONFIG },
    { path: 'model.safetensors', content: WEIGHTS, lfs: true },
    { path: 'original/params.json', content: '{"dim":1}' }
  ], ['main'])
  writeCachedSnapshot(cacheDir, 'org/llama', C2, [
    { path: 'config.json', content: '{"model_type":"llama","v":2}' },
    { path: 'model.safetensors', content: WEIGHTS, lfs: true }
  ], ['v2', 'refs/pr/1'])
  writeCachedSnapshot(cacheDir, 'solo', C1, [{ path: 'README.md', content: '# solo' }], ['main'])
  return { ...built, cacheDir }
}

t.test('GET /api/models lists what is on the disk, including models other tools downloaded', async (t) => {
  const { app, cacheDir } = await cacheWithModels(t)
  // Partial data of an unfinished download counts, and stray entries are ignored.
  writeFileSync(join(cacheDir, 'models--org--llama', 'blobs', `${'c'.repeat(64)}.incomplete`), Buffer.alloc(100))
  writeFileSync(join(cacheDir, 'version.txt'), '1')
  const res = await app.inject({ url: '/api/models', headers: auth() })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.cache_dir, cacheDir)
  t.equal(body.model_count, 2)
  t.same(body.models.map((model: { model_id: string }) => model.model_id), ['org/llama', 'solo'])
  const llama = body.models[0]
  const uniqueBytes = WEIGHTS.length + CONFIG.length + '{"dim":1}'.length + '{"model_type":"llama","v":2}'.length
  t.equal(llama.size_bytes, uniqueBytes, 'a blob shared by two revisions counts once')
  t.equal(llama.file_count, 4)
  t.equal(llama.incomplete_bytes, 100)
  t.equal(llama.is_default, false)
  const byCommit = Object.fromEntries(llama.revisions.map((revision: { commit: string }) => [revision.commit, revision]))
  t.match(byCommit[C1], { refs: ['main'], file_count: 3, size_bytes: WEIGHTS.length + CONFIG.length + 9 }, 'files in sub-folders count')
  t.match(byCommit[C2], { refs: ['refs/pr/1', 'v2'], file_count: 2 }, 'nested refs are read')
  t.equal(body.total_bytes, uniqueBytes + 100 + '# solo'.length)
  t.ok(body.disk.free_bytes > 0 && body.disk.total_bytes >= body.disk.free_bytes)
})

t.test('GET /api/models on an empty or missing cache', async (t) => {
  const { app } = await buildTestApp(t, { HF_HUB_CACHE: join(t.testdir({}), 'not-yet') })
  const body = (await app.inject({ url: '/api/models', headers: auth() })).json()
  t.same(body.models, [])
  t.equal(body.total_bytes, 0)
})

t.test('DELETE /api/delete-model removes the whole model and answers what was freed', async (t) => {
  const { app, cacheDir } = await cacheWithModels(t)
  const blobs = join(cacheDir, 'models--org--llama', 'blobs')
  const blobBytes = readdirSync(blobs).reduce((sum, name) => sum + statSync(join(blobs, name)).size, 0)
  // A partial of huggingface_hub 1.x's naming, left by a download that did not finish.
  writeFileSync(join(blobs, `${'e'.repeat(64)}.0123abcd.incomplete`), Buffer.alloc(1234))
  const res = await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/llama', headers: auth() })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.model_id, 'org/llama')
  t.equal(body.revision, null)
  t.ok(blobBytes > WEIGHTS.length, 'the weights and the small files')
  t.equal(body.freed_bytes, blobBytes, "the blobs' sizes, as huggingface_hub counts them: links and refs are not")
  t.equal(body.partial_bytes, 1234, 'the partial is answered apart')
  t.equal(body.size_mb, Math.round(body.freed_bytes / 1048576 * 10) / 10)
  t.notOk(existsSync(join(cacheDir, 'models--org--llama')))
  t.ok(existsSync(join(cacheDir, 'models--solo')), 'other models stay')
  t.equal((await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/llama', headers: auth() })).statusCode, 404, 'then it is gone')
})

t.test('DELETE with a revision removes that snapshot and only the blobs no other revision uses', async (t) => {
  const { app, cacheDir } = await cacheWithModels(t)
  const res = await app.inject({ method: 'DELETE', url: '/api/delete-model', headers: auth(), payload: { model_id: 'org/llama', revision: 'main' } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().freed_bytes, CONFIG.length + '{"dim":1}'.length, 'the shared weights stay')
  t.equal(res.json().partial_bytes, 0)
  t.equal(res.json().revision, 'main')
  const blobs = readdirSync(join(cacheDir, 'models--org--llama', 'blobs')).sort()
  t.same(blobs, [gitSha1('{"model_type":"llama","v":2}'), sha256(WEIGHTS)].sort())
  t.notOk(existsSync(join(cacheDir, 'models--org--llama', 'snapshots', C1)))
  t.notOk(existsSync(join(cacheDir, 'models--org--llama', 'refs', 'main')), 'its ref goes too')
  t.ok(existsSync(join(cacheDir, 'models--org--llama', 'refs', 'v2')))

  const last = await app.inject({ method: 'DELETE', url: '/api/delete-model', headers: auth(), payload: { model_id: 'org/llama', revision: C2 } })
  t.equal(last.statusCode, 200, 'by commit too')
  t.notOk(existsSync(join(cacheDir, 'models--org--llama')), 'the last revision takes the model with it')
})

t.test('delete answers 404 when not cached and 409 for the default model unless force', async (t) => {
  const { app } = await cacheWithModels(t, { DEFAULT_MODEL: 'org/llama' })
  const missing = await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/absent', headers: auth() })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'MD_MODEL_NOT_CACHED')
  t.equal((await app.inject({ method: 'DELETE', url: `/api/delete-model?model_id=org/llama&revision=${'d'.repeat(40)}`, headers: auth() })).statusCode, 404)

  const models = (await app.inject({ url: '/api/models', headers: auth() })).json()
  t.equal(models.models[0].is_default, true)
  const protectedModel = await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/llama', headers: auth() })
  t.equal(protectedModel.statusCode, 409)
  t.match(protectedModel.json(), { code: 'MD_MODEL_PROTECTED', message: /default model/ })
  t.equal((await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/llama&force=true', headers: auth() })).statusCode, 200)
})

t.test('deleting the last revision of the default model is deleting the model: 409 unless force', async (t) => {
  const { app, cacheDir } = await cacheWithModels(t, { DEFAULT_MODEL: 'solo' })
  const refused = await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=solo&revision=main', headers: auth() })
  t.equal(refused.statusCode, 409)
  t.ok(existsSync(join(cacheDir, 'models--solo')), 'still there')
  const { app: other } = await cacheWithModels(t, { DEFAULT_MODEL: 'org/llama' })
  t.equal((await other.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/llama&revision=v2', headers: auth() })).statusCode, 200, 'an older revision of the default model may go')
  t.equal((await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=solo&revision=main&force=true', headers: auth() })).statusCode, 200)
})

t.test('delete validates the model id before touching the disk', async (t) => {
  const { app, cacheDir } = await cacheWithModels(t)
  for (const modelId of ['../models--solo', 'solo/..', '', 'a/b/c']) {
    const res = await app.inject({ method: 'DELETE', url: '/api/delete-model', headers: auth(), payload: { model_id: modelId } })
    t.equal(res.statusCode, 400, JSON.stringify(modelId))
  }
  t.ok(existsSync(join(cacheDir, 'models--solo')))
})

t.test('the default model starts from DEFAULT_MODEL, changes with PUT and survives a restart', async (t) => {
  const first = await buildTestApp(t, { DEFAULT_MODEL: 'org/from-env' })
  const cacheDir = first.app.config.hubCacheDir
  t.match((await first.app.inject({ url: '/api/default-model', headers: auth() })).json(), { model_id: 'org/from-env', source: 'env', cached: false })

  const set = await first.app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: 'solo' } })
  t.equal(set.statusCode, 200)
  t.match(set.json(), { model_id: 'solo', source: 'state', updated_at: String })
  t.equal((await first.app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: '../x' } })).statusCode, 400)
  t.equal((await first.app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: {} })).statusCode, 400)
  await first.app.close()

  const again = await buildTestApp(t, { DEFAULT_MODEL: 'org/from-env', HF_HUB_CACHE: cacheDir })
  writeCachedSnapshot(cacheDir, 'solo', C1, [{ path: 'README.md', content: '# solo' }], ['main'])
  t.match((await again.app.inject({ url: '/api/default-model', headers: auth() })).json(), { model_id: 'solo', source: 'state', cached: true }, 'kept across restarts')
  t.equal(readdirSync(again.app.config.stateDir).filter((name) => name.endsWith('.tmp')).length, 0, 'no temporary file left')

  const cleared = await again.app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: null } })
  t.match(cleared.json(), { model_id: null, source: 'state', cached: false })
})
