import type { Stats } from 'node:fs'
import { lstat, readdir, readFile, stat } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { repoFolderName } from './cache-layout.js'

export interface CachedRevision {
  commit: string
  /** Branches and tags that point at this commit (`main`, `v1.0`, `refs/pr/1`). */
  refs: string[]
  file_count: number
  size_bytes: number
  last_modified: string
}

export interface CachedModel {
  model_id: string
  revisions: CachedRevision[]
  /** Unique blobs the snapshots use: what the model takes on disk once complete. */
  size_bytes: number
  file_count: number
  /** Bytes of unfinished downloads (`blobs/*.incomplete`), kept to resume. */
  incomplete_bytes: number
  last_modified: string
}

// Our own scan rather than @huggingface/hub's scanCacheDir: that one skips files in snapshot
// sub-folders (`original/params.json`) and nested refs (`refs/pr/1`), and drops a whole repo on one
// dangling symlink. This one follows huggingface_hub's scan_cache_dir (which walks with rglob).
// A download or a delete may change the folder while it is read: whatever vanished between listing
// and reading it counts as not there, so a listing never fails because the cache is in use.

/**
 * Told of every path whose change could change the scan: each directory it listed, each ref it read
 * (huggingface_hub rewrites `refs/main` in place, which leaves its folder's mtime alone) and each
 * partial it measured (a partial grows in place). A cached scan is still right while none of them
 * changed (see cache-listing.ts). Blobs are not among them: a blob is written once, under its hash.
 */
export type ScanWatch = (path: string) => void
const ignore: ScanWatch = () => {}

/** Every model in the cache directory, read from the disk, including those other tools downloaded. */
export async function scanCachedModels (cacheDir: string, watch: ScanWatch = ignore): Promise<CachedModel[]> {
  const models: CachedModel[] = []
  for (const modelId of await listCachedModelIds(cacheDir, watch)) {
    const model = await scanCachedModel(cacheDir, modelId, watch)
    if (model !== undefined) models.push(model)
  }
  return sortModels(models)
}

/** The ids of the `models--*` folders in the cache directory (a folder may still hold nothing). */
export async function listCachedModelIds (cacheDir: string, watch: ScanWatch = ignore): Promise<string[]> {
  watch(cacheDir)
  const entries = await readdir(cacheDir, { withFileTypes: true }).catch(ifMissing([]))
  return entries.filter((entry) => entry.isDirectory() && entry.name.startsWith('models--'))
    .map((entry) => entry.name.slice('models--'.length).split('--').join('/'))
}

export const sortModels = (models: CachedModel[]): CachedModel[] => models.sort((a, b) => a.model_id.localeCompare(b.model_id))

/** One model, or undefined when nothing of it is in the cache. */
export async function scanCachedModel (cacheDir: string, modelId: string, watch: ScanWatch = ignore): Promise<CachedModel | undefined> {
  const dir = join(cacheDir, repoFolderName(modelId))
  watch(dir)
  if (!(await isDirectory(dir))) return undefined
  const refsByCommit = await readRefs(join(dir, 'refs'), watch)
  const blobSizes = new Map<string, { size: number, mtimeMs: number }>()
  const revisions: CachedRevision[] = []

  watch(join(dir, 'snapshots'))
  for (const commit of await listDirectories(join(dir, 'snapshots'))) {
    const revisionBlobs = new Map<string, { size: number, mtimeMs: number }>()
    for (const { blob, stats } of await statLinkTargets(await walkFiles(join(dir, 'snapshots', commit), watch))) {
      revisionBlobs.set(blob, { size: stats.size, mtimeMs: stats.mtimeMs })
      blobSizes.set(blob, { size: stats.size, mtimeMs: stats.mtimeMs })
    }
    const sizes = [...revisionBlobs.values()]
    revisions.push({
      commit,
      refs: refsByCommit.get(commit) ?? [],
      file_count: sizes.length,
      size_bytes: sum(sizes.map((blob) => blob.size)),
      last_modified: new Date(Math.max(0, ...sizes.map((blob) => blob.mtimeMs))).toISOString()
    })
  }

  const incompleteBytes = await sumIncomplete(join(dir, 'blobs'), watch)
  if (revisions.length === 0 && incompleteBytes === 0) return undefined
  const blobs = [...blobSizes.values()]
  const newestBlob = Math.max(0, ...blobs.map((blob) => blob.mtimeMs))
  // No blob yet (only partial data): the folder's own time.
  const lastModified = newestBlob > 0 ? newestBlob : (await stat(dir).catch(ifMissing(undefined)))?.mtimeMs
  if (lastModified === undefined) return undefined // deleted while it was read
  return {
    model_id: modelId,
    revisions: revisions.sort((a, b) => b.last_modified.localeCompare(a.last_modified)),
    size_bytes: sum(blobs.map((blob) => blob.size)),
    file_count: blobs.length,
    incomplete_bytes: incompleteBytes,
    last_modified: new Date(lastModified).toISOString()
  }
}

const STATS_AT_ONCE = 64

/**
 * What each snapshot file is: its blob (the same file, linked from several revisions, counts once) and
 * its size and time. One stat that follows the link, identified by device and inode, rather than a
 * realpath and a stat; several at once, as a 10 000-file snapshot waits on the thread pool 10 000 times.
 * A dangling link (the file is not really there) or one deleted since it was listed is left out.
 */
async function statLinkTargets (files: string[]): Promise<Array<{ blob: string, stats: Stats }>> {
  const found: Array<{ blob: string, stats: Stats }> = []
  for (let i = 0; i < files.length; i += STATS_AT_ONCE) {
    const batch = await Promise.all(files.slice(i, i + STATS_AT_ONCE).map(async (file) => stat(file).catch(ifMissing(undefined))))
    for (const stats of batch) if (stats !== undefined) found.push({ blob: `${stats.dev}:${stats.ino}`, stats })
  }
  return found
}

/** `refs/` files, nested ones included (`refs/pr/1`), grouped by the commit they hold. */
export async function readRefs (refsDir: string, watch: ScanWatch = ignore): Promise<Map<string, string[]>> {
  const byCommit = new Map<string, string[]>()
  for (const file of await walkFiles(refsDir, watch)) {
    watch(file)
    const content = await readFile(file, 'utf8').catch(ifMissing(undefined))
    if (content === undefined) continue
    const commit = content.trim()
    const name = relative(refsDir, file).split(sep).join('/')
    byCommit.set(commit, [...(byCommit.get(commit) ?? []), name].sort())
  }
  return byCommit
}

/** Every file (or symlink) under a directory, depth first; none when it does not exist. `watch` hears of each directory listed. */
export async function walkFiles (dir: string, watch: ScanWatch = ignore): Promise<string[]> {
  watch(dir)
  const entries = await readdir(dir, { withFileTypes: true }).catch(ifMissing([]))
  const files: string[] = []
  for (const entry of entries) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) files.push(...await walkFiles(path, watch))
    else files.push(path)
  }
  return files
}

async function listDirectories (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(ifMissing([]))
  return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name)
}

async function sumIncomplete (blobsDir: string, watch: ScanWatch): Promise<number> {
  let total = 0
  watch(blobsDir)
  for (const entry of await readdir(blobsDir).catch(ifMissing([]))) {
    if (!entry.endsWith('.incomplete')) continue
    watch(join(blobsDir, entry))
    total += (await lstat(join(blobsDir, entry)).catch(ifMissing(undefined)))?.size ?? 0
  }
  return total
}

async function isDirectory (path: string): Promise<boolean> {
  return (await stat(path).catch(ifMissing(undefined)))?.isDirectory() ?? false
}

const sum = (values: number[]): number => values.reduce((total, value) => total + value, 0)

/**
 * A catch handler: a missing path is the given value, any other error is rethrown. A symlink loop
 * (ELOOP) leads nowhere, so it counts as missing too: one bad link must not fail a whole scan.
 */
export function ifMissing<T> (value: T): (err: NodeJS.ErrnoException) => T {
  return (err) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR' || err.code === 'ELOOP') return value
    throw err
  }
}
