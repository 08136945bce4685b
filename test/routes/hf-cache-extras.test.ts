import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import t from 'tap'
import { auth, buildTestApp } from '../helpers/app.js'
import { filesBytes } from '../helpers/cache-models.js'
import { C1, hubAndApp, startDownload, waitForEnd } from '../helpers/downloads.js'
import { gitSha1, writeCachedSnapshot, writeNoExist, writeTreeListing } from '../helpers/hf-cache.js'
import { snapshotTree, treeChanges } from '../helpers/tree-snapshot.js'

// Issue 17, point 4: what huggingface_hub writes beside snapshots/, blobs/ and refs/ — the records
// `.no_exist/{commit}/{path}` (file_download.py: an empty file for each path the Hub answered 404 at
// that commit) and, since 1.x, `trees/{commit}.json` (_tree_cache.py: the commit's file listing) —
// change neither the listing nor a download; deleting a revision removes its commit's records and
// nobody else's; prune leaves a live commit's records alone.

const MAIN = 'a'.repeat(40)
const V2 = 'b'.repeat(40)
const GONE = 'c'.repeat(40) // main once pointed here: only its records are left
const DETACHED = 'd'.repeat(40)
const FRESH = 'e'.repeat(40) // records just written, their ref not yet
const LOOKED_UP = 'f'.repeat(40) // a ref, records, no snapshot: only missing files were asked for at refs/pr/1
const TWO_HOURS_AGO = new Date(Date.now() - 2 * 3600_000)

const repoOf = (cacheDir: string, modelId: string): string => join(cacheDir, `models--${modelId.replace('/', '--')}`)

/** Sets a path's times back two hours, and those of everything under it. */
function age (path: string): void {
  if (lstatSync(path).isDirectory()) for (const name of readdirSync(path)) age(join(path, name))
  utimesSync(path, TWO_HOURS_AGO, TWO_HOURS_AGO)
}

const weights = Buffer.alloc(6000, 1)
const mainFiles = [{ path: 'config.json', content: '{"v":1}' }, { path: 'w.safetensors', content: weights, lfs: true }]
const v2Files = [{ path: 'config.json', content: '{"v":2}' }, { path: 'w.safetensors', content: weights, lfs: true }]

/** `org/a` with main and v2 as huggingface_hub leaves them, without any of its records. */
function plainModel (cacheDir: string): void {
  writeCachedSnapshot(cacheDir, 'org/a', MAIN, mainFiles, ['main'])
  writeCachedSnapshot(cacheDir, 'org/a', V2, v2Files, ['v2'])
}

/** The records a transformers user's from_pretrained and snapshot_download leave for each commit, an old commit's among them. */
function addRecords (cacheDir: string): void {
  const optional = ['adapter_config.json', 'original/generation_config.json', 'tokenizer.json']
  writeNoExist(cacheDir, 'org/a', MAIN, optional)
  writeNoExist(cacheDir, 'org/a', V2, optional)
  writeNoExist(cacheDir, 'org/a', GONE, optional)
  writeTreeListing(cacheDir, 'org/a', MAIN, mainFiles)
  writeTreeListing(cacheDir, 'org/a', V2, v2Files)
  writeTreeListing(cacheDir, 'org/a', GONE, [...mainFiles, { path: 'extra.bin', content: Buffer.alloc(5000, 3), lfs: true }])
  age(join(repoOf(cacheDir, 'org/a'), '.no_exist', GONE))
  age(join(repoOf(cacheDir, 'org/a'), 'trees', `${GONE}.json`))
}

const listing = async (app: Awaited<ReturnType<typeof buildTestApp>>['app']): Promise<Record<string, unknown>> => {
  const body = (await app.inject({ url: '/api/models', headers: auth() })).json()
  return { models: body.models, model_count: body.model_count, total_bytes: body.total_bytes }
}

t.test('GET /api/models is the same with huggingface_hub\'s records as without them', async (t) => {
  const { app } = await buildTestApp(t)
  const cacheDir = app.config.hubCacheDir
  plainModel(cacheDir)
  const { app: other } = await buildTestApp(t)
  const otherCache = other.config.hubCacheDir
  plainModel(otherCache)
  addRecords(otherCache)
  // A model of which huggingface_hub only ever looked up a missing file: a ref, a record, no snapshot.
  writeNoExist(otherCache, 'org/ghost', GONE, ['config.json'])
  writeTreeListing(otherCache, 'org/ghost', GONE, [])
  mkdirSync(join(repoOf(otherCache, 'org/ghost'), 'refs'), { recursive: true })
  writeFileSync(join(repoOf(otherCache, 'org/ghost'), 'refs', 'main'), GONE)
  // Blob times are part of the listing: the same in both caches.
  for (const cache of [cacheDir, otherCache]) age(join(repoOf(cache, 'org/a'), 'blobs'))

  const before = await listing(app)
  t.equal((before.models as unknown[]).length, 1)
  t.same(await listing(other), before, 'same models, revisions, refs, file counts and sizes')
})

t.test('a download follows the Hub: a `.no_exist` name is not a file, a stale `trees/` listing is not the listing', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t)
  writeNoExist(cacheDir, 'org/tiny', C1, ['adapter_config.json', 'original/generation_config.json'])
  writeTreeListing(cacheDir, 'org/tiny', C1, [model.main[0]!]) // lists only config.json
  const listingBefore = readFileSync(join(repoOf(cacheDir, 'org/tiny'), 'trees', `${C1}.json`), 'utf8')

  const started = await startDownload(app, { model_id: 'org/tiny' })
  t.match(started.job, { commit: C1, files_total: 4 })
  const job = await waitForEnd(app, started.job.job_id)
  const total = model.main.reduce((sum, file) => sum + Buffer.byteLength(file.content), 0)
  t.match(job, { status: 'complete', files_done: 4, files_total: 4, bytes_total: total })
  t.same(hub.requests.filter((request) => /adapter_config|generation_config/.test(request.url)), [], 'no request for a file recorded as missing')

  const snapshot = join(repoOf(cacheDir, 'org/tiny'), 'snapshots', C1)
  const linked = (dir: string): string[] => readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => entry.isDirectory() ? linked(join(dir, entry.name)) : [relative(snapshot, join(dir, entry.name)).split(sep).join('/')])
  t.same(linked(snapshot).sort(), model.main.map((file) => file.path).sort(), 'the snapshot holds the Hub\'s files, no more, no fewer')
  t.ok(existsSync(join(repoOf(cacheDir, 'org/tiny'), '.no_exist', C1, 'original', 'generation_config.json')), 'huggingface_hub\'s records stay')
  t.equal(readFileSync(join(repoOf(cacheDir, 'org/tiny'), 'trees', `${C1}.json`), 'utf8'), listingBefore)
  const listed = (await app.inject({ url: '/api/models', headers: auth() })).json().models[0]
  t.match(listed, { model_id: 'org/tiny', file_count: 4, size_bytes: total })
})

t.test('GET /api/cache counts every file, huggingface_hub\'s records too', async (t) => {
  const { app } = await buildTestApp(t)
  const cacheDir = app.config.hubCacheDir
  plainModel(cacheDir)
  addRecords(cacheDir)
  const state = (await app.inject({ url: '/api/cache', headers: auth() })).json()
  const trees = filesBytes(join(repoOf(cacheDir, 'org/a'), 'trees'))
  t.ok(trees > 0)
  t.equal(state.size_bytes, filesBytes(cacheDir), 'the cache: every regular file under it')
  t.match(state.eviction_order, [{ model_id: 'org/a', size_bytes: filesBytes(repoOf(cacheDir, 'org/a')) }], 'the model: what evicting it frees, its tree listings included')
})

t.test('deleting a revision removes exactly its commit\'s records; freed_bytes counts blobs only', async (t) => {
  const { app } = await buildTestApp(t)
  const cacheDir = app.config.hubCacheDir
  plainModel(cacheDir)
  addRecords(cacheDir)
  const repo = repoOf(cacheDir, 'org/a')
  const before = snapshotTree(cacheDir)

  const res = await app.inject({ method: 'DELETE', url: '/api/delete-model', headers: auth(), payload: { model_id: 'org/a', revision: 'v2' } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().freed_bytes, Buffer.byteLength('{"v":2}'), 'the one blob only v2 used; no record counts')

  const deleted = treeChanges(before, snapshotTree(cacheDir)).filter((change) => change.startsWith('deleted ')).map((change) => change.split(' ')[1]).sort()
  const at = (...parts: string[]): string => relative(cacheDir, join(repo, ...parts))
  t.same(deleted, [
    at('.no_exist', V2),
    at('.no_exist', V2, 'adapter_config.json'),
    at('.no_exist', V2, 'original'),
    at('.no_exist', V2, 'original', 'generation_config.json'),
    at('.no_exist', V2, 'tokenizer.json'),
    at('blobs', gitSha1('{"v":2}')),
    at('refs', 'v2'),
    at('snapshots', V2),
    at('snapshots', V2, 'config.json'),
    at('snapshots', V2, 'w.safetensors'),
    at('trees', `${V2}.json`)
  ].sort(), 'the snapshot, its ref, its own blob and its commit\'s records; nothing of main or of the old commit')
})

t.test('deleting the whole model removes every record; freed_bytes counts blobs only', async (t) => {
  const { app } = await buildTestApp(t)
  const cacheDir = app.config.hubCacheDir
  plainModel(cacheDir)
  addRecords(cacheDir)
  const blobs = filesBytes(join(repoOf(cacheDir, 'org/a'), 'blobs'))
  const res = await app.inject({ method: 'DELETE', url: '/api/delete-model', headers: auth(), payload: { model_id: 'org/a' } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().freed_bytes, blobs)
  t.notOk(existsSync(repoOf(cacheDir, 'org/a')), 'the model folder, records and all, is gone')
})

t.test('prune leaves the records of live commits and removes those of commits no ref or snapshot has', async (t) => {
  const { app } = await buildTestApp(t)
  const cacheDir = app.config.hubCacheDir
  plainModel(cacheDir)
  addRecords(cacheDir)
  writeCachedSnapshot(cacheDir, 'org/a', DETACHED, [{ path: 'w.safetensors', content: weights, lfs: true }])
  writeNoExist(cacheDir, 'org/a', DETACHED, ['adapter_config.json'])
  writeTreeListing(cacheDir, 'org/a', DETACHED, [{ path: 'w.safetensors', content: weights, lfs: true }])
  for (const path of [join('snapshots', DETACHED), join('.no_exist', DETACHED), join('trees', `${DETACHED}.json`)]) age(join(repoOf(cacheDir, 'org/a'), path))
  writeNoExist(cacheDir, 'org/a', FRESH, ['adapter_config.json']) // huggingface_hub writes the ref next
  writeTreeListing(cacheDir, 'org/a', FRESH, [])
  writeNoExist(cacheDir, 'org/a', LOOKED_UP, ['adapter_config.json'])
  writeTreeListing(cacheDir, 'org/a', LOOKED_UP, [])
  mkdirSync(join(repoOf(cacheDir, 'org/a'), 'refs', 'refs', 'pr'), { recursive: true })
  writeFileSync(join(repoOf(cacheDir, 'org/a'), 'refs', 'refs', 'pr', '1'), LOOKED_UP)
  for (const path of [join('.no_exist', LOOKED_UP), join('trees', `${LOOKED_UP}.json`)]) age(join(repoOf(cacheDir, 'org/a'), path))
  const trees = join(repoOf(cacheDir, 'org/a'), 'trees')
  writeFileSync(join(trees, 'tmpk3j_9x2a.tmp'), '{"format_version": 1, "fi') // a write killed before its rename
  age(join(trees, 'tmpk3j_9x2a.tmp'))
  writeFileSync(join(trees, 'tmpw8v1q0zz.tmp'), '{') // a write under way
  const models = await listing(app)
  const prefix = 'models--org--a/'

  const dry = (await app.inject({ method: 'POST', url: '/api/cache/prune', headers: auth() })).json()
  t.same(dry.items, [
    { path: `${prefix}.no_exist/${GONE}`, kind: 'stale_record', bytes: 0 },
    { path: `${prefix}trees/${GONE}.json`, kind: 'stale_record', bytes: lstatSync(join(cacheDir, prefix, 'trees', `${GONE}.json`)).size },
    { path: `${prefix}trees/tmpk3j_9x2a.tmp`, kind: 'temporary', bytes: 25 }
  ], 'only the old commit\'s records: main\'s and v2\'s, refs/pr/1\'s (a ref), the detached snapshot\'s (a snapshot) and the fresh ones stay')

  const detached = (await app.inject({ method: 'POST', url: '/api/cache/prune', headers: auth(), payload: { detached: true } })).json()
  const paths = detached.items.map((item: { path: string, kind: string }) => `${item.kind} ${item.path}`).sort()
  t.same(paths, [
    `detached_snapshot ${prefix}snapshots/${DETACHED}`,
    `stale_record ${prefix}.no_exist/${DETACHED}`,
    `stale_record ${prefix}.no_exist/${GONE}`,
    `stale_record ${prefix}trees/${DETACHED}.json`,
    `stale_record ${prefix}trees/${GONE}.json`,
    `temporary ${prefix}trees/tmpk3j_9x2a.tmp`
  ].sort(), 'with detached, a detached snapshot\'s records go with it')

  const pruned = (await app.inject({ method: 'POST', url: '/api/cache/prune', headers: auth(), payload: { dry_run: false, detached: true } })).json()
  t.same(pruned.items.map((item: { path: string, kind: string }) => `${item.kind} ${item.path}`).sort(), paths, 'the real run removes what the dry run listed')
  for (const commit of [GONE, DETACHED]) {
    t.notOk(existsSync(join(cacheDir, prefix, '.no_exist', commit)), `${commit.slice(0, 4)}: .no_exist gone`)
    t.notOk(existsSync(join(cacheDir, prefix, 'trees', `${commit}.json`)), `${commit.slice(0, 4)}: trees gone`)
  }
  t.ok(existsSync(join(trees, 'tmpw8v1q0zz.tmp')), 'a listing being written stays')
  for (const commit of [MAIN, V2, FRESH, LOOKED_UP]) {
    t.ok(existsSync(join(cacheDir, prefix, '.no_exist', commit, 'adapter_config.json')), `${commit.slice(0, 4)}: .no_exist stays`)
    t.ok(existsSync(join(cacheDir, prefix, 'trees', `${commit}.json`)), `${commit.slice(0, 4)}: trees stays`)
  }
  type Listed = Array<{ revisions: Array<{ commit: string }> }>
  const revisionsBefore = (models.models as Listed)[0]!.revisions.filter((revision) => revision.commit !== DETACHED)
  t.same(((await listing(app)).models as Listed)[0]!.revisions, revisionsBefore, 'the listing lost the detached snapshot, nothing else')
})
