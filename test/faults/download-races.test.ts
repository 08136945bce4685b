import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, lutimesSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { FakeHub, sha256Hex, type FakeFile } from '../fakes/fake-hub.js'
import { auth, buildTestApp } from '../helpers/app.js'
import { cacheLeftovers, wrongBlobs } from '../helpers/cache-checks.js'
import { C1, C2, HF_TOKEN, hubAndApp, incompleteFiles, servedSince, startDownload, waitForBytes, waitForEnd, waitForJob } from '../helpers/downloads.js'
import { gitSha1, readAsOfflineReader } from '../helpers/hf-cache.js'

// Races a user can cause with the API while a download runs (delete, a second download, cancel at
// the very end, a token rotation) and a cache a dead process left behind. Each ends with what the
// user depends on: the job's final status, right bytes in blobs/, nothing half-done left over, and a
// server that still takes the next request.

const MiB = 1024 * 1024
const SLOW = 2 * MiB // bytes per second: a 3 MiB file takes long enough to act on
const PARTED = { DOWNLOAD_PART_SIZE_MB: '1', DOWNLOAD_CONNECTIONS_PER_FILE: '4' }
const repo = (modelId: string): string => `models--${modelId.replace('/', '--')}`
const etagOf = (file: FakeFile): string => (file.lfs === true ? sha256Hex(file.content) : gitSha1(file.content))
const deleteModel = async (app: FastifyInstance, query: string) => app.inject({ method: 'DELETE', url: `/api/delete-model?${query}`, headers: auth() })
const cancelJob = async (app: FastifyInstance, jobId: string, query = '') => app.inject({ method: 'DELETE', url: `/api/downloads/${jobId}${query}`, headers: auth() })

/** The promise's value, or undefined if it takes longer than `ms` (the timer does not hold the process open). */
async function within<T> (promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<undefined>((resolve) => { timer = setTimeout(resolve, ms, undefined) })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

/** Every file of the revision reads back right through refs/ and snapshots/, as an offline reader finds it. */
function checkSnapshot (t: Test, cacheDir: string, modelId: string, revision: string, files: FakeFile[]): void {
  for (const file of files) t.same(readAsOfflineReader(cacheDir, modelId, revision, file.path), Buffer.from(file.content), `${modelId}@${revision.slice(0, 8)} ${file.path} reads right`)
}

/** Hashes blobs/ over and over while a test runs: a blob with wrong bytes must never be there, even for a moment. */
function watchBlobs (cacheDir: string): { stop: () => Promise<string[]> } {
  const seen = new Set<string>()
  const state = { running: true }
  const loop = (async () => {
    while (state.running) {
      for (const wrong of wrongBlobs(cacheDir)) seen.add(wrong)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  return { stop: async () => { state.running = false; await loop; return [...seen] } }
}

t.test('1. delete-model while the download runs', async (t) => {
  t.test('without force: 409 naming the job, whether the whole model or a revision; the download goes on and completes', async (t) => {
    const { app, hub, cacheDir, model } = await hubAndApp(t)
    hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: SLOW })
    const { job } = await startDownload(app, { model_id: 'org/tiny' })
    // The small files are in: the commit's snapshot folder holds them, main has no ref yet.
    await waitForJob(app, job.job_id, (state) => state.files_done === 3 && state.bytes_transferred > 300_000, 'the small files in and the weights moving')
    for (const query of ['model_id=org/tiny', `model_id=org/tiny&revision=${C1}`]) {
      const refused = await deleteModel(app, query)
      t.equal(refused.statusCode, 409, query)
      t.match(refused.json(), { code: 'MD_MODEL_PROTECTED', message: new RegExp(`download of org/tiny is running \\(job ${job.job_id as string}\\)`) })
    }
    // main gets its ref once complete: until then that revision is not in the cache, and the download is left alone.
    t.match((await deleteModel(app, 'model_id=org/tiny&revision=main&force=true')).json(), { statusCode: 404, code: 'MD_MODEL_NOT_CACHED' })
    t.equal(incompleteFiles(cacheDir, 'org/tiny').length, 1, 'the partial is untouched')
    const done = await waitForEnd(app, job.job_id)
    t.equal(done.status, 'complete', 'the download went on')
    checkSnapshot(t, cacheDir, 'org/tiny', 'main', model.main)
    t.equal(hub.bytesServed('model.safetensors'), model.weights.length, 'nothing was fetched twice')
    t.same(cacheLeftovers(cacheDir), [])
    t.same(wrongBlobs(cacheDir), [])
  })

  t.test('with force, mid parted transfer: the job ends cancelled, the folder, partials and locks are gone, and a new download completes', async (t) => {
    const { app, hub, cacheDir, model } = await hubAndApp(t, PARTED, 6 * MiB)
    hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 1 * MiB, times: 4 })
    const { job } = await startDownload(app, { model_id: 'org/tiny' })
    await waitForBytes(app, job.job_id, 1 * MiB)
    t.ok(existsSync(join(cacheDir, '.locks', repo('org/tiny'))), 'a blob lock is held while it runs')

    const forced = await deleteModel(app, 'model_id=org/tiny&force=true')
    t.equal(forced.statusCode, 200)
    t.match(forced.json(), { model_id: 'org/tiny', cancelled_jobs: [job.job_id] })
    t.ok(forced.json().partial_bytes >= 1 * MiB, 'the partial data is answered apart from the blobs')
    t.match((await app.inject({ url: `/api/downloads/${job.job_id as string}`, headers: auth() })).json(), { status: 'cancelled', error: null })
    // Part checkpoints are saved every 250 ms: none may land after the delete and bring the folder back.
    await new Promise((resolve) => setTimeout(resolve, 600))
    t.notOk(existsSync(join(cacheDir, repo('org/tiny'))), 'the model folder is gone and stays gone')
    t.notOk(existsSync(join(cacheDir, '.locks', repo('org/tiny'))), 'its locks too')
    t.same(cacheLeftovers(cacheDir), [])
    t.same((await app.inject({ url: '/api/models', headers: auth() })).json().models, [], 'the cache lists nothing')

    const mark = hub.requests.length
    const again = await startDownload(app, { model_id: 'org/tiny' })
    t.equal(again.statusCode, 202, 'a new download starts')
    t.equal((await waitForEnd(app, again.job.job_id)).status, 'complete')
    checkSnapshot(t, cacheDir, 'org/tiny', 'main', model.main)
    t.equal(servedSince(hub, mark, 'model.safetensors'), model.weights.length, 'from scratch: nothing of the deleted partial was reused')
    t.same(cacheLeftovers(cacheDir), [])
    t.same(wrongBlobs(cacheDir), [])
  })

  t.test('before a byte is on disk: still 409 without force, and force stops the download', async (t) => {
    const { app, hub, cacheDir, model } = await hubAndApp(t, { DOWNLOAD_READ_TIMEOUT_MS: '60000' })
    // Every file's answer stops after its headers: the job runs, with empty .incomplete files.
    hub.injectFault({ kind: 'stall', afterBytes: 0, times: model.main.length })
    const { job } = await startDownload(app, { model_id: 'org/tiny' })
    const answered = (): number => hub.requests.filter((request) => request.status === 200 && (request.path.includes('/resolve/') || request.path.includes('/cdn/'))).length
    for (let i = 0; i < 1500 && answered() < model.main.length; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    t.equal(answered(), model.main.length, 'every file is in flight')

    const refused = await deleteModel(app, 'model_id=org/tiny')
    t.equal(refused.statusCode, 409, 'a running download protects the model even before it has bytes on disk')
    t.match(refused.json(), { code: 'MD_MODEL_PROTECTED' })
    const forced = await deleteModel(app, 'model_id=org/tiny&force=true')
    t.equal(forced.statusCode, 200)
    t.match(forced.json(), { cancelled_jobs: [job.job_id], freed_bytes: 0 })
    t.equal((await app.inject({ url: `/api/downloads/${job.job_id as string}`, headers: auth() })).json().status, 'cancelled')
    t.notOk(existsSync(join(cacheDir, repo('org/tiny'))), 'no folder of empty partials is left')
    t.same(cacheLeftovers(cacheDir), [])

    const again = await startDownload(app, { model_id: 'org/tiny' })
    t.equal((await waitForEnd(app, again.job.job_id)).status, 'complete')
    checkSnapshot(t, cacheDir, 'org/tiny', 'main', model.main)
    t.same(cacheLeftovers(cacheDir), [])
  })

  t.test('one revision while another revision of the model downloads: 409 without force; force cancels, keeps what the other needs, and it resumes', async (t) => {
    const { app, hub, cacheDir } = await hubAndApp(t)
    const config: FakeFile = { path: 'config.json', content: '{"model_type":"pair"}' }
    const older: FakeFile[] = [config, { path: 'older.safetensors', content: Buffer.alloc(200_000, 3), lfs: true }]
    const newer: FakeFile[] = [config, { path: 'model.safetensors', content: Buffer.alloc(3 * MiB, 5).fill(9, MiB), lfs: true }]
    hub.addRepo({ id: 'org/pair', revisions: { main: { commit: C1, files: newer }, v1: { commit: C2, files: older } } })
    t.equal((await waitForEnd(app, (await startDownload(app, { model_id: 'org/pair', revision: 'v1' })).job.job_id)).status, 'complete')

    hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: SLOW, times: 2 })
    const first = (await startDownload(app, { model_id: 'org/pair' })).job
    await waitForBytes(app, first.job_id, 300_000)
    const refused = await deleteModel(app, 'model_id=org/pair&revision=v1')
    t.equal(refused.statusCode, 409)
    t.match(refused.json(), { code: 'MD_MODEL_PROTECTED', message: /download of org\/pair is running/ })
    checkSnapshot(t, cacheDir, 'org/pair', 'v1', older)
    t.equal((await waitForEnd(app, first.job_id)).status, 'complete', 'the other revision went on')
    checkSnapshot(t, cacheDir, 'org/pair', 'main', newer)

    // Once more, with force: main is fetched again from scratch and v1 deleted under it.
    t.equal((await deleteModel(app, 'model_id=org/pair&revision=main')).statusCode, 200)
    const second = (await startDownload(app, { model_id: 'org/pair' })).job
    await waitForBytes(app, second.job_id, 300_000)
    const forced = await deleteModel(app, 'model_id=org/pair&revision=v1&force=true')
    t.equal(forced.statusCode, 200)
    t.match(forced.json(), { revision: 'v1', cancelled_jobs: [second.job_id], freed_bytes: 200_000 })
    t.equal((await app.inject({ url: `/api/downloads/${second.job_id as string}`, headers: auth() })).json().status, 'cancelled')
    t.notOk(existsSync(join(cacheDir, repo('org/pair'), 'refs', 'v1')), 'v1 is gone')
    t.notOk(existsSync(join(cacheDir, repo('org/pair'), 'snapshots', C2)))
    t.ok(existsSync(join(cacheDir, repo('org/pair'), 'blobs', etagOf(config))), 'the blob main shares with v1 stays')
    t.equal(incompleteFiles(cacheDir, 'org/pair').length, 1, "main's partial stays, to resume")
    t.same(cacheLeftovers(cacheDir).filter((line) => !line.startsWith('partial')), [], 'no dangling link, lock or scratch file')

    const mark = hub.requests.length
    const partial = statSync(join(cacheDir, repo('org/pair'), 'blobs', incompleteFiles(cacheDir, 'org/pair')[0]!)).size
    const resumed = (await startDownload(app, { model_id: 'org/pair' })).job
    t.equal((await waitForEnd(app, resumed.job_id)).status, 'complete')
    t.equal(servedSince(hub, mark, 'model.safetensors'), 3 * MiB - partial, 'main resumed where it stopped')
    checkSnapshot(t, cacheDir, 'org/pair', 'main', newer)
    t.same(cacheLeftovers(cacheDir), [])
    t.same(wrongBlobs(cacheDir), [])
  })
})

t.test('2. two downloads of one model at once fetch every blob once', async (t) => {
  t.test('the same revision spelled main and as its commit', async (t) => {
    const { app, hub, cacheDir, model } = await hubAndApp(t)
    // Every file comes down slowly, so the two jobs overlap on each one.
    hub.injectFault({ kind: 'slow', bytesPerSecond: 4 * MiB, times: model.main.length })
    const [byName, byCommit] = await Promise.all([startDownload(app, { model_id: 'org/tiny' }), startDownload(app, { model_id: 'org/tiny', revision: C1 })])
    t.not(byName.job.job_id, byCommit.job.job_id, 'two requests, two jobs')
    const ended = await Promise.all([waitForEnd(app, byName.job.job_id), waitForEnd(app, byCommit.job.job_id)])
    t.same(ended.map((job) => job.status), ['complete', 'complete'])
    for (const file of model.main) t.equal(hub.bytesServed(file.path), Buffer.byteLength(file.content), `${file.path} came down once`)
    t.equal(ended[0]!.bytes_transferred + ended[1]!.bytes_transferred, hub.bytesServed(), 'what one job fetched, the other did not')
    checkSnapshot(t, cacheDir, 'org/tiny', 'main', model.main)
    checkSnapshot(t, cacheDir, 'org/tiny', C1, model.main)
    t.same(readdirSync(join(cacheDir, repo('org/tiny'), 'refs')), ['main'], 'a commit needs no ref')
    t.same(cacheLeftovers(cacheDir), [])
    t.same(wrongBlobs(cacheDir), [])
  })

  t.test('overlapping allow_patterns: each request gets what it asked for', async (t) => {
    const { app, hub, cacheDir, model } = await hubAndApp(t)
    hub.injectFault({ kind: 'slow', bytesPerSecond: 4 * MiB, times: model.main.length })
    const [json, weights] = await Promise.all([
      startDownload(app, { model_id: 'org/tiny', allow_patterns: ['*.json'] }),
      startDownload(app, { model_id: 'org/tiny', allow_patterns: ['model.safetensors', 'config.json'] })
    ])
    t.not(json.job.job_id, weights.job.job_id, 'other patterns, another job: neither joins the other')
    const ended = await Promise.all([waitForEnd(app, json.job.job_id), waitForEnd(app, weights.job.job_id)])
    t.match(ended, [{ status: 'complete', files_total: 3 }, { status: 'complete', files_total: 2 }])
    for (const file of model.main) t.equal(hub.bytesServed(file.path), Buffer.byteLength(file.content), `${file.path} came down once`)
    checkSnapshot(t, cacheDir, 'org/tiny', 'main', model.main)
    t.same(cacheLeftovers(cacheDir), [])
    t.same(wrongBlobs(cacheDir), [])
  })
})

t.test('3. cancel at the verify step', async (t) => {
  t.test('every byte but the last is in and hashed: cancelled, no blob, the partial kept, and the same request fetches one byte', async (t) => {
    const { app, hub, cacheDir, model } = await hubAndApp(t, { DOWNLOAD_READ_TIMEOUT_MS: '60000' })
    const size = model.weights.length
    hub.injectFault({ kind: 'stall', path: 'model.safetensors', afterBytes: size - 1 })
    const watch = watchBlobs(cacheDir)
    const { job } = await startDownload(app, { model_id: 'org/tiny' })
    await waitForJob(app, job.job_id, (state) => state.bytes_downloaded === state.bytes_total - 1, 'all but the last byte')

    const cancelled = await cancelJob(app, job.job_id)
    t.match(cancelled.json(), { status: 'cancelled', error: null })
    const blobs = join(cacheDir, repo('org/tiny'), 'blobs')
    t.notOk(existsSync(join(blobs, sha256Hex(model.weights))), 'no blob for a file not verified')
    t.same(readFileSync(join(blobs, `${sha256Hex(model.weights)}.modeldepot.incomplete`)), model.weights.subarray(0, size - 1), 'the partial is kept, byte for byte')
    t.notOk(existsSync(join(cacheDir, repo('org/tiny'), 'refs', 'main')), 'no ref')

    const resumed = await startDownload(app, { model_id: 'org/tiny' })
    t.equal((await waitForEnd(app, resumed.job.job_id)).status, 'complete')
    t.equal(hub.requests.filter((request) => request.path.includes('/cdn/')).at(-1)?.range, `bytes=${size - 1}-`, 'it asked for the last byte only')
    t.equal(hub.bytesServed('model.safetensors'), size, 'one copy in all')
    checkSnapshot(t, cacheDir, 'org/tiny', 'main', model.main)
    t.same(await watch.stop(), [], 'no wrong blob was ever in blobs/')
    t.same(cacheLeftovers(cacheDir), [])
  })

  t.test('a parted file whose parts are all in but one byte: the part state is kept exactly, and the resume fetches that byte', async (t) => {
    const { app, hub, cacheDir, model } = await hubAndApp(t, { DOWNLOAD_PART_SIZE_MB: '2', DOWNLOAD_CONNECTIONS_PER_FILE: '4', DOWNLOAD_READ_TIMEOUT_MS: '60000' }, 8 * MiB)
    const size = model.weights.length
    // Four parts of 2 MiB, all at once: the first one asked for stops one byte short, the others complete.
    hub.injectFault({ kind: 'stall', path: 'model.safetensors', afterBytes: size / 4 - 1 })
    const watch = watchBlobs(cacheDir)
    const { job } = await startDownload(app, { model_id: 'org/tiny' })
    await waitForJob(app, job.job_id, (state) => state.bytes_downloaded === state.bytes_total - 1, 'all but the last byte')

    t.equal((await cancelJob(app, job.job_id)).json().status, 'cancelled')
    const blobs = join(cacheDir, repo('org/tiny'), 'blobs')
    t.notOk(existsSync(join(blobs, sha256Hex(model.weights))), 'no blob')
    const saved = JSON.parse(readFileSync(join(blobs, `${sha256Hex(model.weights)}.modeldepot.incomplete.parts.json`), 'utf8')) as { parts: Array<{ start: number, length: number, done: number }> }
    t.equal(saved.parts.reduce((sum, part) => sum + part.done, 0), size - 1, 'the part state says exactly what is on disk')

    const before = hub.requests.length
    const resumed = await startDownload(app, { model_id: 'org/tiny' })
    t.equal((await waitForEnd(app, resumed.job.job_id)).status, 'complete')
    const missing = saved.parts.find((part) => part.done < part.length)!
    const lastByte = missing.start + missing.length - 1
    const ranges = hub.requests.slice(before).filter((request) => request.path.includes('/cdn/')).map((request) => request.range)
    t.same(ranges, [`bytes=${lastByte}-${lastByte}`], 'one byte asked for')
    t.equal(hub.bytesServed('model.safetensors'), size, 'one copy in all')
    checkSnapshot(t, cacheDir, 'org/tiny', 'main', model.main)
    t.same(await watch.stop(), [])
    t.same(cacheLeftovers(cacheDir), [])
  })

  t.test('a huge partial being read back and hashed: cancel answers at once and keeps it; purge removes it', async (t) => {
    const { app, hub, cacheDir } = await hubAndApp(t)
    // 1 TiB listed, every part recorded as on disk (a sparse file): all that is left is reading it
    // back for the hash, far longer than this test may take.
    const TiB = 2 ** 40
    const file: FakeFile = { path: 'huge.safetensors', content: 'not the real bytes', lfs: true, listedSize: TiB }
    hub.addRepo({ id: 'org/huge', revisions: { main: { commit: C1, files: [file] } } })
    const blobs = join(cacheDir, repo('org/huge'), 'blobs')
    const partial = join(blobs, `${etagOf(file)}.modeldepot.incomplete`)
    mkdirSync(blobs, { recursive: true })
    writeFileSync(partial, '')
    truncateSync(partial, TiB)
    const parts = Array.from({ length: 8 }, (_, i) => ({ start: i * TiB / 8, length: TiB / 8, done: TiB / 8 }))
    const state = `${partial}.parts.json`
    writeFileSync(state, JSON.stringify({ etag: etagOf(file), size: TiB, parts }))
    const old = new Date(Date.now() - 3_600_000)
    utimesSync(state, old, old)

    const { job } = await startDownload(app, { model_id: 'org/huge' })
    t.match(job, { bytes_downloaded: TiB, bytes_total: TiB }, 'the partial counts as there')
    // The transfer saves its part state as it begins, then reads the file back.
    const saved = (): boolean => statSync(state).mtimeMs > old.getTime() + 60_000
    for (let i = 0; i < 1500 && !saved(); i++) await new Promise((resolve) => setTimeout(resolve, 20))
    t.ok(saved(), 'the read-back began')

    const answer = await within(cancelJob(app, job.job_id), 20_000)
    t.ok(answer, 'the cancel is answered while the read-back is far from its end')
    t.equal(answer?.json().status, 'cancelled')
    t.equal(statSync(partial).size, TiB, 'the partial is kept')
    t.same(JSON.parse(readFileSync(state, 'utf8')).parts, parts, 'and its part state, unchanged')
    t.same(readdirSync(blobs).sort(), [`${etagOf(file)}.modeldepot.incomplete`, `${etagOf(file)}.modeldepot.incomplete.parts.json`], 'no blob')

    const again = await startDownload(app, { model_id: 'org/huge' })
    t.match(again.job, { status: /queued|downloading/, bytes_downloaded: TiB }, 'the same request resumes from it')
    const purged = await within(cancelJob(app, again.job.job_id, '?purge=true'), 20_000)
    t.equal(purged?.json().status, 'cancelled')
    t.same(cacheLeftovers(cacheDir), [], 'purge removed the partial and its part state')
    t.ok(hub.requests.every((request) => !request.path.includes('/cdn/')), 'not a byte of it was fetched')
  })
})

t.test('4. a cache left by a dead process (an earlier modeldepot, whose partials had the shared name `{etag}.incomplete`): a fresh app resumes what it can, takes over stale locks, and leaves nothing behind', async (t) => {
  const hub = await FakeHub.start({ tokens: { [HF_TOKEN]: { name: 'reader', role: 'read' } } })
  t.teardown(() => hub.close())
  const config: FakeFile = { path: 'config.json', content: '{"model_type":"left"}' }
  const single: FakeFile = { path: 'single.safetensors', content: randomBytes(1.5 * MiB), lfs: true }
  const parted: FakeFile = { path: 'parted.safetensors', content: randomBytes(6 * MiB), lfs: true }
  const gappy: FakeFile = { path: 'gappy.safetensors', content: randomBytes(4 * MiB), lfs: true }
  const files = [config, single, parted, gappy]
  hub.addRepo({ id: 'org/left', revisions: { main: { commit: C1, files } } })

  const cacheDir = t.testdir()
  const blobs = join(cacheDir, repo('org/left'), 'blobs')
  const locks = join(cacheDir, '.locks', repo('org/left'))
  const tmp = join(cacheDir, repo('org/left'), '.modeldepot-tmp')
  mkdirSync(blobs, { recursive: true })
  mkdirSync(locks, { recursive: true })
  mkdirSync(tmp, { recursive: true })
  const old = new Date(Date.now() - 2 * 3_600_000)
  // config.json: complete, with a dead attempt's partial and part state beside it.
  writeFileSync(join(blobs, etagOf(config)), config.content)
  writeFileSync(join(blobs, `${etagOf(config)}.incomplete`), 'garbage')
  writeFileSync(join(blobs, `${etagOf(config)}.incomplete.parts.json`), '{"etag":"x"}')
  utimesSync(join(blobs, `${etagOf(config)}.incomplete`), old, old)
  // …and the lock of a process killed after the blob was renamed into place, before it let go.
  mkdirSync(join(locks, `${etagOf(config)}.modeldepot.lock`))
  utimesSync(join(locks, `${etagOf(config)}.modeldepot.lock`), old, old)
  // single.safetensors (one stream): a valid prefix, and the dead process's lock on it.
  const singlePrefix = 700_000
  writeFileSync(join(blobs, `${etagOf(single)}.incomplete`), Buffer.from(single.content).subarray(0, singlePrefix))
  mkdirSync(join(locks, `${etagOf(single)}.modeldepot.lock`))
  utimesSync(join(locks, `${etagOf(single)}.modeldepot.lock`), old, old)
  // parted.safetensors (three parts of 2 MiB): a valid prefix, a stale lock, and a part state that
  // does not match the file: it says every part is done, the file holds 2.5 MiB.
  const partedPrefix = 2.5 * MiB
  writeFileSync(join(blobs, `${etagOf(parted)}.incomplete`), Buffer.from(parted.content).subarray(0, partedPrefix))
  writeFileSync(join(blobs, `${etagOf(parted)}.incomplete.parts.json`), JSON.stringify({
    etag: etagOf(parted), size: 6 * MiB, parts: [0, 1, 2].map((i) => ({ start: i * 2 * MiB, length: 2 * MiB, done: 2 * MiB }))
  }))
  mkdirSync(join(locks, `${etagOf(parted)}.modeldepot.lock`))
  utimesSync(join(locks, `${etagOf(parted)}.modeldepot.lock`), old, old)
  // gappy.safetensors (two parts of 2 MiB): a part state whose parts do not cover the file.
  const gappyPrefix = 1 * MiB
  writeFileSync(join(blobs, `${etagOf(gappy)}.incomplete`), Buffer.from(gappy.content).subarray(0, gappyPrefix))
  writeFileSync(join(blobs, `${etagOf(gappy)}.incomplete.parts.json`), JSON.stringify({ etag: etagOf(gappy), size: 4 * MiB, parts: [{ start: 0, length: 2 * MiB, done: gappyPrefix }] }))
  // Scratch: a snapshot link made aside and never renamed into place, a half-written part state,
  // a model folder and a snapshot moved to the trash and never removed.
  const aside = join(tmp, randomUUID())
  symlinkSync('../../blobs/gone', aside)
  lutimesSync(aside, old, old)
  const halfWritten = join(tmp, randomUUID())
  writeFileSync(halfWritten, '{"etag":')
  utimesSync(halfWritten, old, old)
  const trashed = join(cacheDir, '.locks', '.modeldepot-trash', randomUUID(), 'blobs')
  mkdirSync(trashed, { recursive: true })
  writeFileSync(join(trashed, 'x'), Buffer.alloc(100_000))
  const trashedSnapshot = join(cacheDir, repo('org/left'), '.modeldepot-trash', randomUUID())
  mkdirSync(trashedSnapshot, { recursive: true })
  symlinkSync('../../blobs/gone', join(trashedSnapshot, 'config.json'))

  // …but one just made may be another replica's, a moment from its rename.
  const fresh = join(tmp, randomUUID())
  writeFileSync(fresh, '')

  const { app } = await buildTestApp(t, { HF_ENDPOINT: hub.url, HF_TOKEN, HF_HUB_CACHE: cacheDir, DOWNLOAD_PART_SIZE_MB: '2', DOWNLOAD_CONNECTIONS_PER_FILE: '4', DOWNLOAD_RETRY_BASE_MS: '10' })
  const { job } = await startDownload(app, { model_id: 'org/left' })
  t.match(job, { bytes_downloaded: Buffer.byteLength(config.content) + singlePrefix + partedPrefix + gappyPrefix }, 'what is on disk counts, and only that')
  const done = await waitForEnd(app, job.job_id)
  t.match(done, { status: 'complete', error: null })
  checkSnapshot(t, cacheDir, 'org/left', 'main', files)
  t.equal(hub.bytesServed('config.json'), 0, 'the complete blob is not fetched')
  t.equal(hub.bytesServed('single.safetensors'), single.content.length - singlePrefix, 'single stream: only the missing bytes')
  t.ok(hub.requests.some((request) => request.range === `bytes=${singlePrefix}-`), 'resumed at the end of the prefix')
  t.equal(hub.bytesServed('parted.safetensors'), parted.content.length - partedPrefix, 'parted: only the missing bytes, the stale part state ignored')
  t.equal(hub.bytesServed('gappy.safetensors'), gappy.content.length - gappyPrefix, 'a part state that does not cover the file is ignored too')
  t.equal(done.bytes_transferred, single.content.length - singlePrefix + parted.content.length - partedPrefix + gappy.content.length - gappyPrefix)
  // Scratch files are swept in the background at start-up.
  const stale = (): string[] => cacheLeftovers(cacheDir).filter((line) => !line.endsWith(fresh.slice(cacheDir.length + 1)))
  for (let i = 0; i < 500 && stale().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(stale(), [], 'no partial, part state, lock, dangling link or stale scratch file is left')
  t.ok(existsSync(fresh), 'a scratch file made just now stays')
  t.same(wrongBlobs(cacheDir), [])
  t.match((await app.inject({ url: '/api/models', headers: auth() })).json().models, [{ model_id: 'org/left', incomplete_bytes: 0, file_count: files.length }])
})

t.test('5. a token rotated during a download: later requests carry the new one, the revoked one is never sent again, nothing is fetched twice', async (t) => {
  const NEW_TOKEN = 'hf_rotated_reader_token'
  // One connection per job: the file's parts, and the files after it, are asked for one by one,
  // most of them after the rotation.
  const { app, hub, cacheDir, model } = await hubAndApp(t, { ...PARTED, DOWNLOAD_MAX_CONNECTIONS: '1', DOWNLOAD_FILE_CONCURRENCY: '1' }, 6 * MiB)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 512 * 1024 })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  await waitForJob(app, job.job_id, (state) => state.current_files.includes('model.safetensors') && state.bytes_transferred > 300_000, 'the weights moving')

  hub.addToken(NEW_TOKEN)
  const rotated = await app.inject({ method: 'PUT', url: '/api/providers/huggingface/token', headers: auth(), payload: { token: NEW_TOKEN } })
  t.equal(rotated.statusCode, 200)
  t.match(rotated.json(), { check: { ok: true } })
  hub.revokeToken(HF_TOKEN)
  const rotation = hub.requests.length

  const done = await waitForEnd(app, job.job_id)
  t.match(done, { status: 'complete', error: null })
  const after = hub.requests.slice(rotation)
  // The weights' later parts go to the CDN address the Hub gave for the file; the files after them
  // are asked of the Hub.
  const fileRequests = after.filter((request) => request.path.includes('/resolve/'))
  const weightParts = after.filter((request) => request.path.includes('/cdn/') && request.url.includes('model.safetensors'))
  t.ok(weightParts.length >= 2, `parts of the weights were asked for after the rotation (${weightParts.length} requests)`)
  // Here the fake CDN is on the Hub's own host, so it is sent the Hub's headers: read as each request goes.
  t.ok(weightParts.every((request) => request.authorization === `Bearer ${NEW_TOKEN}`), 'each with the new token')
  t.ok(fileRequests.length >= 2, `and other files of the Hub (${fileRequests.length} requests)`)
  t.ok(fileRequests.every((request) => request.authorization === `Bearer ${NEW_TOKEN}`), 'each with the new token')
  t.same(after.filter((request) => request.authorization === `Bearer ${HF_TOKEN}`).map((request) => request.url), [], 'none with the revoked one')
  t.same(after.filter((request) => request.status === 401).map((request) => request.url), [], 'none refused')
  for (const file of model.main) t.equal(hub.bytesServed(file.path), Buffer.byteLength(file.content), `${file.path} came down once`)
  checkSnapshot(t, cacheDir, 'org/tiny', 'main', model.main)
  t.same(cacheLeftovers(cacheDir), [])
  const next = await startDownload(app, { model_id: 'org/tiny', revision: 'v2' })
  t.equal((await waitForEnd(app, next.job.job_id)).status, 'complete', 'a later download works with the new token')
})
