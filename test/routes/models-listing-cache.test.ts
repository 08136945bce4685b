import { lstatSync, mkdirSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { auth, buildTestApp } from '../helpers/app.js'
import { hubAndApp, startDownload, waitForEnd } from '../helpers/downloads.js'
import { gitSha1, writeCachedSnapshot } from '../helpers/hf-cache.js'

// GET /api/models keeps its scan between calls (src/status/cache-summary.ts). These check that it
// still shows every change at once: modeldepot's own, and those of another program writing the cache.

const C1 = 'a'.repeat(40)
const C2 = 'b'.repeat(40)

interface Listed { model_id: string, size_bytes: number, file_count: number, incomplete_bytes: number, revisions: Array<{ commit: string, refs: string[] }> }
async function listing (app: FastifyInstance): Promise<Listed[]> {
  const res = await app.inject({ url: '/api/models', headers: auth() })
  if (res.statusCode !== 200) throw new Error(`GET /api/models answered ${res.statusCode}`)
  return res.json().models
}
const ids = (models: Listed[]): string[] => models.map((model) => model.model_id)

/** Every folder and file of the cache an hour old: a scan of it is not "racy" and is kept. */
function backdate (dir: string): void {
  const hourAgo = new Date(Date.now() - 3600_000)
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    const stats = lstatSync(path)
    if (stats.isSymbolicLink()) continue
    if (stats.isDirectory()) backdate(path)
    utimesSync(path, hourAgo, hourAgo)
  }
  utimesSync(dir, hourAgo, hourAgo)
}

/** What huggingface_hub does for one more file of a snapshot: the blob, then a relative link. */
function addFile (cacheDir: string, modelId: string, commit: string, path: string, content: string): void {
  const repo = join(cacheDir, `models--${modelId.replace('/', '--')}`)
  const blob = join(repo, 'blobs', gitSha1(content))
  writeFileSync(blob, content)
  const link = join(repo, 'snapshots', commit, ...path.split('/'))
  mkdirSync(dirname(link), { recursive: true })
  symlinkSync(relative(dirname(link), blob), link)
}

t.test('models another program writes into the cache show at the next listing, though the scan is kept', async (t) => {
  const { app } = await buildTestApp(t)
  const cacheDir = app.config.hubCacheDir
  writeCachedSnapshot(cacheDir, 'org/llama', C1, [
    { path: 'config.json', content: '{}' },
    { path: 'original/params.json', content: '{"dim":1}' }
  ], ['main'])
  backdate(cacheDir)
  const first = await listing(app)
  t.same(ids(first), ['org/llama'])

  // A change no directory shows (a blob grown in place: nobody does that) proves the listing comes from the kept scan.
  const llamaBlob = join(cacheDir, 'models--org--llama', 'blobs', gitSha1('{}'))
  writeFileSync(llamaBlob, '{"grown": true}')
  utimesSync(llamaBlob, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000))
  t.equal((await listing(app))[0]!.size_bytes, first[0]!.size_bytes, 'the kept scan answered')

  writeCachedSnapshot(cacheDir, 'org/other', C1, [{ path: 'config.json', content: '{"other":1}' }], ['main'])
  t.same(ids(await listing(app)), ['org/llama', 'org/other'], 'a new model folder')

  backdate(cacheDir)
  await listing(app)
  addFile(cacheDir, 'org/llama', C1, 'original/tokenizer.model', 'tok')
  t.equal((await listing(app))[0]!.file_count, 3, 'a file linked into an existing sub-folder of a snapshot')

  backdate(cacheDir)
  await listing(app)
  writeCachedSnapshot(cacheDir, 'org/llama', C2, [{ path: 'config.json', content: '{"v":2}' }])
  t.equal((await listing(app))[0]!.revisions.length, 2, 'a new snapshot')
  backdate(cacheDir)
  await listing(app)
  // huggingface_hub writes refs/main in place (ref_path.write_text), which leaves refs/ as it was.
  writeFileSync(join(cacheDir, 'models--org--llama', 'refs', 'main'), C2)
  const moved = (await listing(app))[0]!
  t.same(moved.revisions.find((revision) => revision.commit === C2)?.refs, ['main'], 'a ref rewritten in place')
  t.same(moved.revisions.find((revision) => revision.commit === C1)?.refs, [])

  backdate(cacheDir)
  await listing(app)
  const partial = join(cacheDir, 'models--org--other', 'blobs', `${'c'.repeat(64)}.incomplete`)
  writeFileSync(partial, Buffer.alloc(100))
  t.equal((await listing(app))[1]!.incomplete_bytes, 100, 'a new partial')
  backdate(cacheDir)
  await listing(app)
  writeFileSync(partial, Buffer.alloc(50), { flag: 'a' })
  t.equal((await listing(app))[1]!.incomplete_bytes, 150, 'a partial that grew')
})

t.test('a download and a delete through the API change the listing at once', async (t) => {
  const { app, cacheDir } = await hubAndApp(t)
  writeCachedSnapshot(cacheDir, 'org/kept', C1, [{ path: 'config.json', content: '{}' }], ['main'])
  backdate(cacheDir)
  t.same(ids(await listing(app)), ['org/kept'])

  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  t.equal((await waitForEnd(app, job.job_id)).status, 'complete')
  backdate(cacheDir)
  t.same(ids(await listing(app)), ['org/kept', 'org/tiny'], 'the downloaded model is listed')

  const deleted = await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/tiny', headers: auth() })
  t.equal(deleted.statusCode, 200)
  t.same(ids(await listing(app)), ['org/kept'], 'the deleted model is gone')

  const put = await app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: 'org/kept' } })
  t.equal(put.statusCode, 200)
  t.equal((await app.inject({ url: '/api/models', headers: auth() })).json().models[0].is_default, true, 'a new default model shows')
})
