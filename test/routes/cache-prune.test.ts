import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, constants, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import t, { type Test } from 'tap'
import { tryBlobLock } from '../../src/downloads/blob-lock.js'
import { auth, buildTestApp } from '../helpers/app.js'
import { hubAndApp, startDownload, waitForBytes } from '../helpers/downloads.js'
import { sha256, writeCachedSnapshot } from '../helpers/hf-cache.js'

// Issue 19, prune: POST /api/cache/prune finds what no model needs; a dry run changes nothing on
// disk, not even a timestamp; the real run removes exactly what the dry run listed; a held lock stays.

const MAIN = 'a'.repeat(40)
const DETACHED = 'd'.repeat(40)
const TWO_HOURS_AGO = new Date(Date.now() - 2 * 3600_000)
const repo = (cacheDir: string): string => join(cacheDir, 'models--org--a')

/** Sets a path's times back two hours (a link's own, not its target's). */
function age (path: string): void {
  utimesSync(path, TWO_HOURS_AGO, TWO_HOURS_AGO)
}

interface Layout { expected: Map<string, string>, detachedOnly: Map<string, string>, heldLock: string }

/** A cache with one of everything prune looks for, old and fresh; answers what a dry run must list (path → kind). */
async function messyCache (t: Test, cacheDir: string): Promise<Layout> {
  const shared = Buffer.alloc(5000, 1)
  const own = Buffer.alloc(7000, 2)
  writeCachedSnapshot(cacheDir, 'org/a', MAIN, [{ path: 'config.json', content: '{}' }, { path: 'w.safetensors', content: shared, lfs: true }], ['main'])
  writeCachedSnapshot(cacheDir, 'org/a', DETACHED, [{ path: 'w.safetensors', content: shared, lfs: true }, { path: 'x.safetensors', content: own, lfs: true }])
  const dir = repo(cacheDir)
  for (const folder of [join(dir, 'snapshots', DETACHED)]) age(folder)
  const expected = new Map<string, string>()
  const detachedOnly = new Map<string, string>([
    [`models--org--a/snapshots/${DETACHED}`, 'detached_snapshot'],
    [`models--org--a/blobs/${sha256(own)}`, 'detached_blob']
  ])
  const file = (path: string, bytes: number, old: boolean, kind?: string): void => {
    mkdirSync(join(path, '..'), { recursive: true })
    writeFileSync(path, Buffer.alloc(bytes, 7))
    if (old) age(path)
    if (kind !== undefined) expected.set(relative(cacheDir, path), kind)
  }
  file(join(dir, 'blobs', 'f'.repeat(64)), 3000, true, 'unreferenced_blob')
  file(join(dir, 'blobs', 'e'.repeat(64)), 3000, false) // just moved into place: not yet linked
  file(join(dir, 'blobs', `${'c'.repeat(64)}.incomplete`), 1500, true, 'partial')
  file(join(dir, 'blobs', `${'c'.repeat(64)}.incomplete.parts.json`), 20, true, 'partial')
  file(join(dir, 'blobs', `${'b'.repeat(64)}.0a1b2c3d.incomplete`), 900, true, 'partial') // huggingface_hub >= 1.18
  file(join(dir, 'blobs', `${'9'.repeat(64)}.incomplete`), 800, false) // a download writing now
  file(join(dir, '.modeldepot-tmp', 'left-by-a-kill'), 40, true, 'temporary')
  file(join(dir, '.modeldepot-tmp', 'mid-step'), 40, false)
  const locks = join(cacheDir, '.locks', 'models--org--a')
  file(join(locks, `${'f'.repeat(64)}.lock`), 0, true, 'lock')
  const heldLock = join(locks, `${'e'.repeat(64)}.lock`)
  file(heldLock, 0, true)
  // A modeldepot lock a killed process left, and one a live writer holds.
  const stale = join(locks, `${'8'.repeat(64)}.modeldepot.lock`)
  mkdirSync(stale)
  age(stale)
  expected.set(relative(cacheDir, stale), 'lock')
  const release = await tryBlobLock(join(locks, `${'7'.repeat(64)}.modeldepot.lock`))
  t.teardown(async () => release?.())
  // huggingface_hub holds its lock with flock(2): here a flock(1) process holds it for the test.
  // Its own process group, so that the teardown ends flock and the shell it runs at once.
  const holder = spawn('flock', [heldLock, 'sh', '-c', 'echo held; exec sleep 120'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => { process.kill(-holder.pid!, 'SIGKILL') })
  await new Promise<void>((resolve, reject) => {
    holder.stdout.once('data', () => resolve())
    holder.once('error', reject)
  })
  return { expected, detachedOnly, heldLock }
}

/** Everything on disk under a folder: kind, size, mtime, inode of every entry; atime and a hash of each file, read with O_NOATIME. */
function recordTree (root: string): Map<string, string> {
  const tree = new Map<string, string>()
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      const stats = lstatSync(path, { bigint: true })
      const base = `size ${stats.size} mtime ${stats.mtimeNs} ino ${stats.ino}`
      if (stats.isDirectory()) {
        tree.set(relative(root, path), `dir ${base}`)
        walk(path)
      } else if (stats.isSymbolicLink()) {
        // Following or reading a link may set its atime (the kernel's, for any reader): size, mtime and inode say it is the same link.
        tree.set(relative(root, path), `link ${base}`)
      } else {
        tree.set(relative(root, path), `file ${base} atime ${stats.atimeNs} sha256 ${hashQuietly(path)}`)
      }
    }
  }
  walk(root)
  return tree
}

function hashQuietly (path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOATIME)
  const hash = createHash('sha256')
  const chunk = Buffer.alloc(64 * 1024)
  try {
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) hash.update(chunk.subarray(0, n))
  } finally {
    closeSync(fd)
  }
  return hash.digest('hex')
}

/**
 * The app, once the sweep of leftovers it runs at its start is over: that sweep removes old
 * temporaries too, and must not be what empties the cache under the test. (A second resume joins
 * the first one's sweep.)
 */
async function settledApp (t: Test): Promise<Awaited<ReturnType<typeof buildTestApp>>['app']> {
  const { app } = await buildTestApp(t)
  await app.ready()
  await app.downloads.resume()
  return app
}

const byPath = (items: Array<{ path: string, kind: string }>): Map<string, string> => new Map(items.map((item) => [item.path, item.kind]))

t.test('a dry run lists every kind of leftover and changes nothing on disk, not even an atime', async (t) => {
  const app = await settledApp(t)
  const cacheDir = app.config.hubCacheDir
  const { expected, detachedOnly } = await messyCache(t, cacheDir)
  const before = recordTree(cacheDir)

  const res = await app.inject({ method: 'POST', url: '/api/cache/prune', headers: auth() })
  t.equal(res.statusCode, 200)
  const dry = res.json()
  t.equal(dry.dry_run, true, 'a dry run unless dry_run=false')
  t.same(byPath(dry.items), expected, 'the old leftovers and nothing else: not the fresh ones, not the held lock, not the detached snapshot')
  t.equal(dry.total_bytes, dry.items.reduce((sum: number, item: { bytes: number }) => sum + item.bytes, 0))
  t.equal(dry.total_bytes, 3000 + 1500 + 20 + 900 + 40)
  t.equal(dry.freed_bytes, 0)

  const detached = (await app.inject({ method: 'POST', url: '/api/cache/prune?detached=true', headers: auth(), payload: { dry_run: true } })).json()
  t.same(byPath(detached.items), new Map([...expected, ...detachedOnly]), 'detached=true adds the snapshot no ref points to and the blob only it uses')
  t.same(recordTree(cacheDir), before, 'every entry as it was: size, mtime, inode, and each file\'s atime and bytes')
})

t.test('the real run frees exactly the listed items and leaves the rest byte for byte', async (t) => {
  const app = await settledApp(t)
  const cacheDir = app.config.hubCacheDir
  const { heldLock } = await messyCache(t, cacheDir)
  const dry = (await app.inject({ method: 'POST', url: '/api/cache/prune', headers: auth(), payload: { detached: true } })).json()
  const before = recordTree(cacheDir)

  const res = await app.inject({ method: 'POST', url: '/api/cache/prune', headers: auth(), payload: { dry_run: false, detached: true } })
  t.equal(res.statusCode, 200)
  const real = res.json()
  t.same(real.items, dry.items, 'what the dry run listed')
  t.equal(real.freed_bytes, dry.total_bytes)
  const listed = dry.items.map((item: { path: string }) => item.path) as string[]
  for (const path of listed) t.notOk(existsSync(join(cacheDir, path)), `${path} is gone`)
  const after = recordTree(cacheDir)
  for (const [path, was] of before) {
    if (listed.some((gone) => path === gone || path.startsWith(`${gone}/`))) continue
    if (was.startsWith('dir ')) t.ok(after.has(path), `${path} is still there`)
    else t.equal(after.get(path), was, `${path} is untouched`)
  }
  t.ok(existsSync(heldLock), 'the lock a process holds is never removed')
  const main = join(repo(cacheDir), 'snapshots', MAIN, 'w.safetensors')
  t.equal(hashQuietly(main), sha256(Buffer.alloc(5000, 1)), 'the referenced snapshot still reads, through the blob it shared with the detached one')
  const again = (await app.inject({ method: 'POST', url: '/api/cache/prune', headers: auth(), payload: { detached: true } })).json()
  t.same(again.items, [], 'nothing is left to prune')
})

t.test('a symlinked blob and a snapshot link written as an absolute path are still seen as linked', async (t) => {
  const { app } = await buildTestApp(t)
  const cacheDir = app.config.hubCacheDir
  writeCachedSnapshot(cacheDir, 'org/a', MAIN, [{ path: 'config.json', content: '{}' }], ['main'])
  const blob = join(repo(cacheDir), 'blobs', 'a'.repeat(64))
  writeFileSync(blob, 'weights')
  symlinkSync(blob, join(repo(cacheDir), 'snapshots', MAIN, 'abs.bin'))
  age(blob)
  const dry = (await app.inject({ method: 'POST', url: '/api/cache/prune', headers: auth() })).json()
  t.same(dry.items, [], 'a blob some snapshot links to, however the link is written, is not unreferenced')
})

t.test('prune leaves alone the partials of a model whose download has not ended, however old', async (t) => {
  const { app, hub, cacheDir } = await hubAndApp(t)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 64 * 1024 })
  const download = await startDownload(app, { model_id: 'org/tiny' })
  await waitForBytes(app, download.job.job_id, 1)
  const blobs = join(cacheDir, 'models--org--tiny', 'blobs')
  const partials = readdirSync(blobs).filter((name) => name.endsWith('.incomplete'))
  t.ok(partials.length > 0, 'the download has a partial on disk')
  // An earlier attempt's partial, left for hours: still this job's to resume.
  const earlier = join(blobs, `${'c'.repeat(64)}.incomplete`)
  writeFileSync(earlier, 'resumable')
  age(earlier)
  const dry = (await app.inject({ method: 'POST', url: '/api/cache/prune', headers: auth(), payload: { detached: true } })).json()
  t.same(dry.items, [], 'nothing of org/tiny is listed: its snapshot has no ref yet and its partials are in use')
  const real = (await app.inject({ method: 'POST', url: '/api/cache/prune', headers: auth(), payload: { dry_run: false, detached: true } })).json()
  t.equal(real.freed_bytes, 0)
  t.ok(existsSync(earlier), 'the old partial is still there')
  await app.inject({ method: 'DELETE', url: `/api/downloads/${download.job.job_id as string}`, headers: auth() })
})
