import { execFile } from 'node:child_process'
import { constants } from 'node:fs'
import { lstat, open, readdir, rm, stat } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { promisify } from 'node:util'
import lockfile from 'proper-lockfile'
import { tryBlobLock } from '../downloads/blob-lock.js'
import { ABANDONED_AFTER_MS } from './cache-temporaries.js'
import { lockPath, NO_EXIST_FOLDER, repoFolderName, TMP_FOLDER, TRASH_FOLDER, TREES_FOLDER } from './cache-layout.js'
import { ifMissing, walkFiles } from './cache-scan.js'
import { treeBytes } from './cache-usage.js'

export type PruneKind = 'unreferenced_blob' | 'partial' | 'temporary' | 'lock' | 'detached_snapshot' | 'detached_blob' | 'stale_record'

export interface PruneItem {
  /** Relative to the hub cache, with `/`. */
  path: string
  kind: PruneKind
  bytes: number
}

export interface PruneOptions {
  /** Also snapshots no ref points to, with the blobs only they use. */
  detached: boolean
  /** Models with a job that has not ended: their partials, blobs and snapshots are in use and left alone. */
  activeModels: ReadonlySet<string>
  now: number
}

// Why an hour: a blob just moved into place is unlinked until its link is made, and a partial, a
// temporary or a lock a replica on another machine writes may carry that machine's clock.
const OLD_AFTER_MS = ABANDONED_AFTER_MS
const HELD_BY_PROCESS = 75
const STATS_AT_ONCE = 64

const execFileAsync = promisify(execFile)

/**
 * Whether a huggingface_hub lock file (`{etag}.lock`, a flock(2) file) is free: `flock -n` from
 * util-linux tries it (Node cannot flock without a native addon) and runs `command` while it holds
 * it. Opening the file moves no timestamp. Without the flock tool the lock counts as held: never
 * removed when it cannot be tried.
 */
async function underFlock (path: string, command: string[]): Promise<boolean> {
  try {
    await execFileAsync('flock', ['--nonblock', '--conflict-exit-code', String(HELD_BY_PROCESS), path, ...command])
    return true
  } catch {
    return false
  }
}

/** A ref's content, read without moving its atime (O_NOATIME; a file of another owner is read plainly). */
async function readQuietly (path: string): Promise<string | undefined> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOATIME).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPERM') return open(path, 'r')
    throw err
  }).catch(ifMissing(undefined))
  if (handle === undefined) return undefined
  try {
    return await handle.readFile('utf8')
  } finally {
    await handle.close()
  }
}

// By mtime, as the sweep of temporaries: a rename (a blob moved into place) keeps the time of its last write, which is just before.
const changedAt = (stats: { mtimeMs: number }): number => stats.mtimeMs

/** The blob an entry of `snapshots/` or `blobs/` is: the file a link leads to, by device and inode. */
const fileKey = (stats: { dev: number, ino: number }): string => `${stats.dev}:${stats.ino}`

interface Found { item: PruneItem, absolute: string, modelId?: string, etag?: string }

/**
 * What `POST /api/cache/prune` would remove, read without changing anything on disk: blobs no
 * snapshot links to, partials and modeldepot's temporaries, lock files no process holds (each older
 * than an hour), huggingface_hub's records (`.no_exist/{commit}/`, `trees/{commit}.json`) of commits
 * no ref names and no snapshot holds (older than an hour too), and with `detached` the snapshots no
 * ref points to with the blobs only they use and their commits' records.
 * Reading lists folders and follows links (which the kernel may note in their atime) and lstats
 * files; it never reads a blob, and reads refs with O_NOATIME.
 */
export async function findPrunable (cacheDir: string, options: PruneOptions): Promise<PruneItem[]> {
  return (await find(cacheDir, options)).map((found) => found.item)
}

async function find (cacheDir: string, options: PruneOptions): Promise<Found[]> {
  const found: Found[] = []
  const old = (stats: { mtimeMs: number }): boolean => options.now - changedAt(stats) >= OLD_AFTER_MS
  const add = (absolute: string, kind: PruneKind, bytes: number, extra: Partial<Found> = {}): void => {
    found.push({ item: { path: relative(cacheDir, absolute).split(sep).join('/'), kind, bytes }, absolute, ...extra })
  }
  const addIfOld = async (absolute: string, kind: PruneKind): Promise<void> => {
    const stats = await lstat(absolute).catch(ifMissing(undefined))
    if (stats === undefined || !old(stats)) return
    add(absolute, kind, stats.isDirectory() ? await treeBytes(absolute) : stats.isFile() ? stats.size : 0)
  }

  const repos = (await readdir(cacheDir).catch(ifMissing<string[]>([]))).filter((name) => name.startsWith('models--'))
  for (const repo of repos) {
    const modelId = repo.slice('models--'.length).split('--').join('/')
    const dir = join(cacheDir, repo)
    for (const folder of [TMP_FOLDER, TRASH_FOLDER]) {
      for (const name of await readdir(join(dir, folder)).catch(ifMissing<string[]>([]))) await addIfOld(join(dir, folder, name), 'temporary')
    }
    if (options.activeModels.has(modelId)) continue
    await findInRepo(cacheDir, dir, modelId, options, old, add)
  }

  const locks = join(cacheDir, '.locks')
  for (const name of await readdir(join(locks, TRASH_FOLDER)).catch(ifMissing<string[]>([]))) await addIfOld(join(locks, TRASH_FOLDER, name), 'temporary')
  for (const repo of (await readdir(locks).catch(ifMissing<string[]>([]))).filter((name) => name.startsWith('models--'))) {
    for (const name of await readdir(join(locks, repo)).catch(ifMissing<string[]>([]))) {
      const path = join(locks, repo, name)
      const stats = await lstat(path).catch(ifMissing(undefined))
      if (stats === undefined || !old(stats)) continue
      if (name.endsWith('.modeldepot.lock')) {
        // proper-lockfile's lock is a folder its holder touches every few seconds: one this old is held by no one.
        if (!await lockfile.check(path, { lockfilePath: path, realpath: false }).catch(() => true)) add(path, 'lock', 0)
      } else if (name.endsWith('.lock') && stats.isFile()) {
        if (await underFlock(path, ['true'])) add(path, 'lock', stats.size)
      }
    }
  }
  return found
}

async function findInRepo (
  cacheDir: string,
  dir: string,
  modelId: string,
  options: PruneOptions,
  old: (stats: { mtimeMs: number }) => boolean,
  add: (absolute: string, kind: PruneKind, bytes: number, extra?: Partial<Found>) => void
): Promise<void> {
  // Which blob each snapshot uses, by the file its links lead to.
  const snapshotsDir = join(dir, 'snapshots')
  const usedBy = new Map<string, Set<string>>()
  for (const commit of await readdir(snapshotsDir).catch(ifMissing<string[]>([]))) {
    const used = new Set<string>()
    const files = await walkFiles(join(snapshotsDir, commit))
    // Several at once: a 10 000-file snapshot would otherwise wait on the thread pool 10 000 times in a row.
    for (let i = 0; i < files.length; i += STATS_AT_ONCE) {
      const batch = await Promise.all(files.slice(i, i + STATS_AT_ONCE).map(async (file) => stat(file).catch(ifMissing(undefined))))
      for (const stats of batch) if (stats !== undefined) used.add(fileKey(stats))
    }
    usedBy.set(commit, used)
  }
  const referenced = new Set<string>()
  for (const ref of await walkFiles(join(dir, 'refs'))) {
    const commit = (await readQuietly(ref))?.trim()
    if (commit !== undefined) referenced.add(commit)
  }
  const detached = new Set<string>()
  if (options.detached) {
    for (const commit of usedBy.keys()) {
      if (referenced.has(commit)) continue
      // A snapshot being filled has no ref yet (the ref is written last): only an old one counts as detached.
      if (await newestChange(join(snapshotsDir, commit)) <= options.now - OLD_AFTER_MS) detached.add(commit)
    }
  }
  const kept = new Set<string>()
  const onlyDetached = new Set<string>()
  for (const [commit, used] of usedBy) for (const key of used) (detached.has(commit) ? onlyDetached : kept).add(key)
  for (const key of kept) onlyDetached.delete(key)

  // The snapshot goes before its blobs, so no link of it ever dangles.
  for (const commit of detached) add(join(snapshotsDir, commit), 'detached_snapshot', await treeBytes(join(snapshotsDir, commit)))
  const live = (commit: string): boolean => (usedBy.has(commit) || referenced.has(commit)) && !detached.has(commit)
  await findStaleRecords(dir, live, detached, old, add)
  const blobs = join(dir, 'blobs')
  for (const name of await readdir(blobs).catch(ifMissing<string[]>([]))) {
    const path = join(blobs, name)
    const entry = await lstat(path).catch(ifMissing(undefined))
    if (entry === undefined) continue
    const etag = name.split('.')[0]!
    if (name.includes('.incomplete')) {
      if (old(entry) && await partialUnlocked(cacheDir, modelId, etag)) add(path, 'partial', entry.size, { modelId, etag })
      continue
    }
    // A blob that is itself a link is known by where it leads, as the snapshots' links are; only the link is removed.
    const target = entry.isSymbolicLink() ? await stat(path).catch(ifMissing(undefined)) : entry
    const key = fileKey(target ?? entry)
    if (onlyDetached.has(key)) add(path, 'detached_blob', entry.size)
    else if (!kept.has(key) && old(entry)) add(path, 'unreferenced_blob', entry.size)
  }
}

/**
 * huggingface_hub's records of commits the cache no longer holds: a `.no_exist/{commit}/` or
 * `trees/{commit}.json` of a commit that neither a ref nor a snapshot has only saves a request for
 * that exact commit hash (huggingface_hub asks again and writes it anew), so it is garbage once old.
 * Those of a commit that a ref or a snapshot has are in use and never listed; those of a detached
 * snapshot being pruned go with it. An hour, because huggingface_hub writes the record before the ref.
 */
async function findStaleRecords (
  dir: string,
  live: (commit: string) => boolean,
  detached: ReadonlySet<string>,
  old: (stats: { mtimeMs: number }) => boolean,
  add: (absolute: string, kind: PruneKind, bytes: number) => void
): Promise<void> {
  const noExist = join(dir, NO_EXIST_FOLDER)
  for (const commit of await readdir(noExist).catch(ifMissing<string[]>([]))) {
    if (live(commit)) continue
    const path = join(noExist, commit)
    if (detached.has(commit) || old({ mtimeMs: await newestChange(path) })) add(path, 'stale_record', await treeBytes(path))
  }
  const trees = join(dir, TREES_FOLDER)
  for (const name of await readdir(trees).catch(ifMissing<string[]>([]))) {
    const path = join(trees, name)
    const stats = await lstat(path).catch(ifMissing(undefined))
    if (stats === undefined || !stats.isFile()) continue
    // huggingface_hub writes a listing to a `tmp*.tmp` (mkstemp) and renames it: an old one is a killed write's.
    if (name.endsWith('.tmp')) {
      if (old(stats)) add(path, 'temporary', stats.size)
      continue
    }
    const commit = name.endsWith('.json') ? name.slice(0, -'.json'.length) : undefined
    if (commit !== undefined && !live(commit) && (detached.has(commit) || old(stats))) add(path, 'stale_record', stats.size)
  }
}

/** The latest change of a folder and the folders in it (a link added to `snapshots/{commit}/original/` moves only that one). */
async function newestChange (dir: string): Promise<number> {
  const stats = await lstat(dir).catch(ifMissing(undefined))
  if (stats === undefined) return Infinity
  let newest = changedAt(stats)
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(ifMissing([]))) {
    if (entry.isDirectory()) newest = Math.max(newest, await newestChange(join(dir, entry.name)))
  }
  return newest
}

/** No writer holds the blob's lock: neither modeldepot's (proper-lockfile) nor huggingface_hub's (flock). */
async function partialUnlocked (cacheDir: string, modelId: string, etag: string): Promise<boolean> {
  const ours = lockPath(cacheDir, modelId, etag)
  if (await lockfile.check(ours, { lockfilePath: ours, realpath: false }).catch(() => true)) return false
  const python = join(cacheDir, '.locks', repoFolderName(modelId), `${etag}.lock`)
  const exists = await lstat(python).then(() => true, ifMissing(false))
  return !exists || await underFlock(python, ['true'])
}

/**
 * Removes what `findPrunable` finds, each under the lock that guards it: a modeldepot lock or a
 * partial only once modeldepot's own lock on it is taken, a huggingface_hub lock file only while
 * `flock` holds it. What became held or was removed meanwhile is skipped. Answers what went.
 */
export async function prune (cacheDir: string, options: PruneOptions): Promise<PruneItem[]> {
  const removed: PruneItem[] = []
  for (const found of await find(cacheDir, options)) {
    const { item, absolute } = found
    if (await removeOne(cacheDir, found, absolute)) removed.push(item)
  }
  return removed
}

async function removeOne (cacheDir: string, found: Found, absolute: string): Promise<boolean> {
  const { kind, path } = found.item
  if (kind === 'lock' && path.endsWith('.modeldepot.lock')) {
    const release = await tryBlobLock(absolute).catch(() => undefined)
    if (release === undefined) return false
    await release() // proper-lockfile's release removes the lock folder
    return true
  }
  if (kind === 'lock') return underFlock(absolute, ['rm', '-f', absolute])
  if (kind === 'partial' && found.modelId !== undefined && found.etag !== undefined) {
    const release = await tryBlobLock(lockPath(cacheDir, found.modelId, found.etag)).catch(() => undefined)
    if (release === undefined) return false
    try {
      await rm(absolute, { force: true })
    } finally {
      await release()
    }
    return true
  }
  await rm(absolute, { recursive: true, force: true })
  return true
}
