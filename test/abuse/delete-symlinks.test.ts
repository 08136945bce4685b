import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { auth, buildTestApp } from '../helpers/app.js'
import { gitSha1, readAsOfflineReader, writeCachedSnapshot } from '../helpers/hf-cache.js'
import { snapshotTree, treeChanges } from '../helpers/tree-snapshot.js'

// A model folder is a tree of symlinks, and another tool (or a hostile user of the volume) can leave
// one that points out of the cache. Deleting the model removes the link, never what it points to.

const C1 = 'a'.repeat(40)
const C2 = 'b'.repeat(40)
const WEIGHTS = 'w'.repeat(4096)
const OUTSIDE_BYTES = 1024 * 1024
const OTHER_CONFIG = '{"model_type":"other"}'

interface Sandbox { cacheDir: string, outside: string, repo: string }

/** A cache holding org/llama (main = C1, v2 = C2) and org/other, and beside the cache a folder the links point into. */
async function sandboxWithLinks (t: Test) {
  const sandbox = mkdtempSync(join(tmpdir(), 'modeldepot-symlinks-'))
  t.teardown(() => rmSync(sandbox, { recursive: true, force: true }))
  const cacheDir = join(sandbox, 'cache')
  const outside = join(sandbox, 'outside')
  mkdirSync(join(outside, 'dir', 'nested'), { recursive: true })
  writeFileSync(join(outside, 'secret.txt'), Buffer.alloc(OUTSIDE_BYTES, 'k'))
  writeFileSync(join(outside, 'dir', 'a.txt'), 'keep me')
  writeFileSync(join(outside, 'dir', 'nested', 'b.txt'), 'keep me too')

  writeCachedSnapshot(cacheDir, 'org/llama', C1, [
    { path: 'config.json', content: '{"model_type":"llama"}' },
    { path: 'model.safetensors', content: WEIGHTS, lfs: true }
  ], ['main'])
  writeCachedSnapshot(cacheDir, 'org/llama', C2, [
    { path: 'config.json', content: '{"model_type":"llama","v":2}' },
    { path: 'model.safetensors', content: WEIGHTS, lfs: true }
  ], ['v2'])
  writeCachedSnapshot(cacheDir, 'org/other', C1, [{ path: 'config.json', content: OTHER_CONFIG }], ['main'])

  const repo = join(cacheDir, 'models--org--llama')
  const snapshot = join(repo, 'snapshots', C1)
  // In snapshots/: links straight out, absolute and relative, to a file and to a folder with content.
  symlinkSync(join(outside, 'secret.txt'), join(snapshot, 'escape-absolute.bin'))
  symlinkSync(join('..', '..', '..', '..', 'outside', 'secret.txt'), join(snapshot, 'escape-relative.bin'))
  symlinkSync(join(outside, 'dir'), join(snapshot, 'escape-folder'))
  // In blobs/: "blobs" that are links out, reached from the snapshot as huggingface_hub links any blob.
  symlinkSync(join(outside, 'secret.txt'), join(repo, 'blobs', 'e'.repeat(64)))
  symlinkSync(join('..', '..', 'blobs', 'e'.repeat(64)), join(snapshot, 'through-blob.bin'))
  symlinkSync(join(outside, 'dir'), join(repo, 'blobs', 'f'.repeat(40)))
  symlinkSync(join('..', '..', 'blobs', 'f'.repeat(40)), join(snapshot, 'through-blob-folder'))
  // And one into another model's blobs: still in the cache, but not this model's to delete.
  symlinkSync(join('..', '..', '..', 'models--org--other', 'blobs', gitSha1(OTHER_CONFIG)), join(snapshot, 'borrowed.json'))

  const built = await buildTestApp(t, { HF_HUB_CACHE: cacheDir })
  const sandboxInfo: Sandbox = { cacheDir, outside, repo }
  return { ...built, ...sandboxInfo }
}

const untouched = (t: Test, before: ReturnType<typeof snapshotTree>, outside: string): void => {
  t.same(treeChanges(before, snapshotTree(outside)), [], 'nothing outside the cache was deleted or changed')
}

t.test('deleting a whole model removes its links, never the files and folders they point to', async (t) => {
  const { app, outside, repo, cacheDir } = await sandboxWithLinks(t)
  const before = snapshotTree(outside)
  const res = await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/llama', headers: auth() })
  t.equal(res.statusCode, 200)
  untouched(t, before, outside)
  t.notOk(existsSync(repo), 'the model folder is gone')
  t.ok(res.json().freed_bytes < OUTSIDE_BYTES, 'the bytes behind the links are not counted as freed')
  t.equal(readAsOfflineReader(cacheDir, 'org/other', 'main', 'config.json').toString(), OTHER_CONFIG, 'the other model is whole')
})

t.test('deleting one revision removes its links and its own blobs, never what a link points to', async (t) => {
  const { app, outside, repo, cacheDir } = await sandboxWithLinks(t)
  const before = snapshotTree(outside)
  const res = await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/llama&revision=main', headers: auth() })
  t.equal(res.statusCode, 200)
  untouched(t, before, outside)
  t.notOk(existsSync(join(repo, 'snapshots', C1)), 'the snapshot is gone')
  t.same(readdirSync(join(repo, 'blobs')).filter((name) => lstatSync(join(repo, 'blobs', name)).isSymbolicLink()), [],
    'the links in blobs/ only that revision used are gone too')
  t.ok(res.json().freed_bytes < OUTSIDE_BYTES, 'the bytes behind the links are not counted as freed')
  t.equal(readAsOfflineReader(cacheDir, 'org/llama', 'v2', 'model.safetensors').toString(), WEIGHTS, 'the other revision still reads its shared blob')
  t.equal(readAsOfflineReader(cacheDir, 'org/other', 'main', 'config.json').toString(), OTHER_CONFIG, 'the other model keeps the blob that was linked to')
})

t.test('a symlink loop in a model folder does not break listing or deleting it', async (t) => {
  const { app, repo } = await sandboxWithLinks(t)
  symlinkSync('loop', join(repo, 'snapshots', C1, 'loop'))
  symlinkSync(join('..', '..', 'blobs', 'c'.repeat(64)), join(repo, 'blobs', 'c'.repeat(64)))
  const list = await app.inject({ url: '/api/models', headers: auth() })
  t.equal(list.statusCode, 200, 'the models are listed')
  t.same(list.json().models.map((model: { model_id: string }) => model.model_id), ['org/llama', 'org/other'])
  t.equal((await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/llama&revision=main', headers: auth() })).statusCode, 200, 'a revision with a loop is deleted')
  t.equal((await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/llama', headers: auth() })).statusCode, 200, 'and the whole model')
  t.notOk(existsSync(repo))
})

t.test('a revision whose files are copies, not links (huggingface_hub where it cannot link), is deleted too', async (t) => {
  const { app, repo, cacheDir } = await sandboxWithLinks(t)
  const copied = join(repo, 'snapshots', C1, 'copied.json')
  writeFileSync(copied, '{"copied":true}')
  const res = await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/llama&revision=main', headers: auth() })
  t.equal(res.statusCode, 200)
  t.notOk(existsSync(copied), 'the copy went with its snapshot')
  t.equal(readAsOfflineReader(cacheDir, 'org/llama', 'v2', 'config.json').toString(), '{"model_type":"llama","v":2}', 'the other revision is whole')
})
