import { randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, readFileSync, readlinkSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'
import { CallbackReceiver } from '../fakes/callback-receiver.js'
import { auth } from '../helpers/app.js'
import { C1, hubAndApp, servedSince, startDownload, tinyModel, waitForBytes, waitForEnd, waitForJob } from '../helpers/downloads.js'
import { writeCachedSnapshot } from '../helpers/hf-cache.js'

// Issue 19, verify: POST /api/models/verify re-hashes a cached revision offline from what the cache
// records (an LFS blob's name is its sha256, any other blob's its git blob sha1), as a job of kind
// verify that takes no download slot; with repair=true it fetches exactly the bad files again.

const MB = 1024 * 1024
const repoDir = (cacheDir: string, modelId: string): string => join(cacheDir, `models--${modelId.replace('/', '--')}`)
const snapshotFile = (cacheDir: string, modelId: string, path: string): string => join(repoDir(cacheDir, modelId), 'snapshots', C1, ...path.split('/'))
const blobOf = (cacheDir: string, modelId: string, path: string): string => {
  const link = snapshotFile(cacheDir, modelId, path)
  return resolve(dirname(link), readlinkSync(link))
}

function flipByte (file: string, at: number): void {
  const bytes = readFileSync(file)
  bytes[at] = (bytes[at]! + 1) % 256
  writeFileSync(file, bytes)
}

async function verify (app: Awaited<ReturnType<typeof hubAndApp>>['app'], payload: Record<string, unknown> | null, query = '') {
  return app.inject({ method: 'POST', url: `/api/models/verify${query}`, headers: auth(), ...(payload === null ? {} : { payload }) })
}

t.test('verify finds a flipped byte (LFS and git files) and a missing blob without asking the Hub; repair fetches exactly those files', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t)
  const { job: download } = await startDownload(app, { model_id: 'org/tiny' })
  t.equal((await waitForEnd(app, download.job_id)).status, 'complete')

  flipByte(blobOf(cacheDir, 'org/tiny', 'model.safetensors'), 1234)
  flipByte(blobOf(cacheDir, 'org/tiny', 'config.json'), 3)
  unlinkSync(blobOf(cacheDir, 'org/tiny', 'tokenizer.json'))
  const flipped = readFileSync(blobOf(cacheDir, 'org/tiny', 'model.safetensors'))
  const mark = hub.requests.length

  const started = await verify(app, { model_id: 'org/tiny' })
  t.equal(started.statusCode, 202, 'accepted as a job')
  const job = started.json()
  t.equal(started.headers.location, `/api/downloads/${job.job_id as string}`)
  t.match(job, { kind: 'verify', model_id: 'org/tiny', revision: 'main', commit: C1, files_total: 4 })
  const ended = await waitForEnd(app, job.job_id)
  t.match(ended, { kind: 'verify', status: 'complete', error: null, bytes_transferred: 0, files_done: 4 })
  t.same(ended.verify, { mismatched: ['config.json', 'model.safetensors'], missing: ['tokenizer.json'], unchecked: [] }, 'the flipped files and the missing blob, by path')
  t.equal(hub.requests.length, mark, 'nothing was asked of the Hub')
  t.same(readFileSync(blobOf(cacheDir, 'org/tiny', 'model.safetensors')), flipped, 'without repair, nothing in the cache changed')
  const listed = (await app.inject({ url: `/api/downloads/${job.job_id as string}`, headers: auth() })).json()
  t.same(listed.verify, ended.verify, 'the findings stay on the job')

  const repairMark = hub.requests.length
  const repairing = await verify(app, null, '?model_id=org/tiny&repair=true')
  t.equal(repairing.statusCode, 202, 'parameters in the query string too')
  const repaired = await waitForEnd(app, repairing.json().job_id)
  t.match(repaired, { kind: 'verify', status: 'complete', error: null })
  t.same(repaired.verify.mismatched, ['config.json', 'model.safetensors'])
  t.same(repaired.verify.missing, ['tokenizer.json'])
  t.same(repaired.verify.repaired, ['config.json', 'model.safetensors', 'tokenizer.json'], 'it says what it fetched again')
  t.equal(servedSince(hub, repairMark, 'original/params.json'), 0, 'the good file was not fetched')
  t.equal(servedSince(hub, repairMark, 'model.safetensors'), model.weights.length, 'the mismatched weights came again, once')
  t.ok(servedSince(hub, repairMark, 'tokenizer.json') > 0, 'the missing file came again')
  t.same(readFileSync(snapshotFile(cacheDir, 'org/tiny', 'model.safetensors')), model.weights, 'the weights are right again')
  t.equal(readFileSync(snapshotFile(cacheDir, 'org/tiny', 'config.json'), 'utf8'), model.main[0]!.content, 'so is config.json')

  const again = await waitForEnd(app, (await verify(app, { model_id: 'org/tiny', revision: 'main' })).json().job_id)
  t.same(again.verify, { mismatched: [], missing: [], unchecked: [] }, 'verified again, the revision is whole')
})

t.test('a verify takes no download slot: it runs and ends while the only slot is taken', async (t) => {
  const { app, hub } = await hubAndApp(t, { MAX_CONCURRENT_DOWNLOADS: '1' })
  t.equal((await waitForEnd(app, (await startDownload(app, { model_id: 'org/tiny' })).job.job_id)).status, 'complete')
  const other = tinyModel(4 * MB)
  hub.addRepo({ id: 'org/other', revisions: { main: { commit: C1, files: other.main } } })
  hub.addRepo({ id: 'org/third', revisions: { main: { commit: C1, files: tinyModel(MB).main } } })
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 256 * 1024 })
  const { job: busy } = await startDownload(app, { model_id: 'org/other' })
  await waitForBytes(app, busy.job_id, 64 * 1024)
  const { job: waiting } = await startDownload(app, { model_id: 'org/third' })
  t.equal(waiting.status, 'queued', 'a second download waits for the slot')

  const checked = await waitForEnd(app, (await verify(app, { model_id: 'org/tiny' })).json().job_id)
  t.match(checked, { status: 'complete', verify: { mismatched: [], missing: [] } })
  const jobs = (await app.inject({ url: '/api/downloads', headers: auth() })).json().jobs as Array<{ job_id: string, status: string }>
  t.equal(jobs.find((one) => one.job_id === busy.job_id)?.status, 'downloading', 'the download still holds the slot')
  t.equal(jobs.find((one) => one.job_id === waiting.job_id)?.status, 'queued', 'and the queued download still waits')
  await app.inject({ method: 'DELETE', url: `/api/downloads/${busy.job_id as string}`, headers: auth() })
})

t.test('what another tool wrote is verified too, at a tag; a copied file is unchecked; a callback comes when it ends', async (t) => {
  const receiver = await CallbackReceiver.start()
  t.teardown(() => receiver.close())
  const { app, cacheDir } = await hubAndApp(t, { CALLBACK_ALLOWED_HOSTS: '127.0.0.1' })
  writeCachedSnapshot(cacheDir, 'org/python', C1, [
    { path: 'config.json', content: '{"a":1}' },
    { path: 'weights/model.bin', content: Buffer.alloc(MB, 7), lfs: true },
    { path: 'README.md', content: '# copied' }
  ], ['main', 'v1.0'])
  // huggingface_hub copies a file where it cannot link: no name records its hash.
  const copied = snapshotFile(cacheDir, 'org/python', 'README.md')
  const blob = blobOf(cacheDir, 'org/python', 'README.md')
  rmSync(copied)
  copyFileSync(blob, copied)

  const res = await verify(app, { model_id: 'org/python', revision: 'v1.0', callback_url: `${receiver.url}/verified` })
  t.equal(res.statusCode, 202)
  const ended = await waitForEnd(app, res.json().job_id)
  t.match(ended, { status: 'complete', revision: 'v1.0', commit: C1, bytes_total: MB + 7 }, 'the copied file counts for nothing: its bytes are not checked')
  t.same(ended.verify, { mismatched: [], missing: [], unchecked: ['README.md'] })
  await receiver.waitFor(1)
  t.match(JSON.parse(receiver.received[0]!.body), { job_id: ended.job_id, kind: 'verify', status: 'complete', verify: { unchecked: ['README.md'] } }, 'the callback carries the findings')
})

t.test('large blobs (hashed on a hash thread): a flipped byte in an LFS and in a git blob, and a blob cut short, are found; the good one passes; progress reaches every byte', async (t) => {
  const { app, cacheDir } = await hubAndApp(t)
  const files = [
    { path: 'good.safetensors', content: randomBytes(24 * MB), lfs: true },
    { path: 'flipped.safetensors', content: randomBytes(20 * MB), lfs: true },
    { path: 'short.safetensors', content: randomBytes(12 * MB), lfs: true },
    { path: 'vocab.txt', content: randomBytes(9 * MB) }
  ]
  writeCachedSnapshot(cacheDir, 'org/large', C1, files, ['main'])
  flipByte(blobOf(cacheDir, 'org/large', 'flipped.safetensors'), 15 * MB + 3)
  flipByte(blobOf(cacheDir, 'org/large', 'vocab.txt'), 9 * MB - 1)
  truncateSync(blobOf(cacheDir, 'org/large', 'short.safetensors'), 10 * MB)
  const res = await verify(app, { model_id: 'org/large' })
  t.equal(res.statusCode, 202)
  const ended = await waitForEnd(app, res.json().job_id)
  const total = (24 + 20 + 10 + 9) * MB
  t.match(ended, { status: 'complete', error: null, bytes_total: total, bytes_downloaded: total, progress: 100 }, 'every byte counted as hashed')
  t.same(ended.verify, { mismatched: ['flipped.safetensors', 'short.safetensors', 'vocab.txt'], missing: [], unchecked: [] })
})

t.test('while a verify hashes: the model is not evicted and a delete answers 409; a cancel stops the hash part way, and the delete then goes through', async (t) => {
  const { app, cacheDir } = await hubAndApp(t)
  writeCachedSnapshot(cacheDir, 'org/huge', C1, [{ path: 'config.json', content: '{}' }], ['main'])
  // A sparse 4 GiB blob (no disk used) named as an LFS blob: seconds of hashing on the thread.
  const repo = join(cacheDir, 'models--org--huge')
  const blob = join(repo, 'blobs', 'f'.repeat(64))
  writeFileSync(blob, '')
  truncateSync(blob, 4096 * MB)
  symlinkSync(relative(join(repo, 'snapshots', C1), blob), join(repo, 'snapshots', C1, 'model.safetensors'))
  const job = (await verify(app, { model_id: 'org/huge' })).json()
  await waitForJob(app, job.job_id, (seen) => seen.bytes_downloaded > 0, 'the first bytes hashed')

  const cache = (await app.inject({ url: '/api/cache', headers: auth() })).json()
  t.match(cache.eviction_order.find((model: { model_id: string }) => model.model_id === 'org/huge'), { protected: 'active_job' }, 'protected from eviction while it is verified')
  const refused = await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/huge', headers: auth() })
  t.equal(refused.statusCode, 409)
  t.match(refused.json(), { code: 'MD_MODEL_PROTECTED' })
  t.ok(existsSync(blob), 'nothing was deleted')

  t.equal((await app.inject({ method: 'DELETE', url: `/api/downloads/${job.job_id as string}`, headers: auth() })).statusCode, 200, 'cancelled')
  const ended = await waitForEnd(app, job.job_id)
  t.equal(ended.status, 'cancelled')
  t.ok(ended.bytes_downloaded < 4096 * MB, `the hash stopped part way (${ended.bytes_downloaded as number} of ${4096 * MB} bytes)`)
  t.equal((await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/huge', headers: auth() })).statusCode, 200, 'the delete goes through once the verify has ended')
  t.notOk(existsSync(repo), 'and the model is gone')
})

t.test('a model or revision the cache lacks is a 404 MD_MODEL_NOT_CACHED, and bad parameters a 400; nothing is started', async (t) => {
  const { app } = await hubAndApp(t)
  const absent = await verify(app, { model_id: 'org/tiny' })
  t.equal(absent.statusCode, 404)
  t.match(absent.json(), { code: 'MD_MODEL_NOT_CACHED', message: /org\/tiny@main/, hint: /GET \/api\/models/ })
  t.equal((await waitForEnd(app, (await startDownload(app, { model_id: 'org/tiny' })).job.job_id)).status, 'complete')
  t.match((await verify(app, { model_id: 'org/tiny', revision: 'v2' })).json(), { statusCode: 404, code: 'MD_MODEL_NOT_CACHED' }, 'a revision the cache does not have')
  t.match((await verify(app, {})).json(), { statusCode: 400, code: 'MD_VALIDATION_FAILED', message: /model_id/ })
  t.match((await verify(app, { model_id: 'not a repo' })).json(), { statusCode: 400 })
  t.match((await verify(app, { model_id: 'org/tiny', repair: 'maybe' })).json(), { statusCode: 400 })
  t.match((await verify(app, { model_id: 'org/tiny', callback_url: 'http://elsewhere.example/x' })).json(), { statusCode: 400 })
  const jobs = (await app.inject({ url: '/api/downloads', headers: auth() })).json().jobs as Array<{ kind: string }>
  t.equal(jobs.filter((job) => job.kind === 'verify').length, 0, 'no verify job was made')
})
