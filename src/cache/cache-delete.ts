import { randomUUID } from 'node:crypto'
import { lstat, mkdir, readdir, readFile, readlink, realpath, rename, rm, unlink } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { blobsDir, lockPath, noExistDir, refPath, repoDir, repoTrashDirOf, snapshotDir, trashDirOf, treeListingPath } from './cache-layout.js'
import { ifMissing, walkFiles } from './cache-scan.js'

// Deleting moves the folder aside first (one atomic rename inside the cache, so on the same file
// system) into a trash huggingface_hub does not scan: a reader sees the model or its absence, never
// a half-deleted snapshot.
async function removeAtomically (trashDir: string, path: string): Promise<void> {
  const trash = join(trashDir, randomUUID())
  await mkdir(join(trash, '..'), { recursive: true })
  await rename(path, trash)
  await rm(trash, { recursive: true, force: true })
}

export interface Freed {
  /** The blobs' sizes: what huggingface_hub's delete strategy counts (links and refs are not). */
  blobBytes: number
  /** Partial downloads removed with them (ours and huggingface_hub's `.incomplete` files, parts state). */
  partialBytes: number
}

// huggingface_hub writes `{etag}.incomplete` (before 1.18) or `{etag}.{8 hex}.incomplete`; ours,
// `{etag}.modeldepot.incomplete`,
// sit beside them with their parts state. None of them is a blob yet.
const isPartial = (name: string): boolean => name.includes('.incomplete')

/** What the entries of `blobs/` take, blobs and partials apart (a link counts as itself, never its target). */
async function blobUsage (blobs: string): Promise<Freed> {
  const usage = { blobBytes: 0, partialBytes: 0 }
  for (const file of await walkFiles(blobs)) {
    const size = (await lstat(file).catch(ifMissing(undefined)))?.size ?? 0
    if (isPartial(basename(file))) usage.partialBytes += size
    else usage.blobBytes += size
  }
  return usage
}

/** Removes a whole model; answers what was freed, or undefined when it is not cached. */
export async function deleteCachedModel (cacheDir: string, modelId: string): Promise<Freed | undefined> {
  const dir = repoDir(cacheDir, modelId)
  const freed = await blobUsage(blobsDir(cacheDir, modelId))
  const moved = await removeAtomically(trashDirOf(cacheDir), dir).then(() => true, ifMissing(false))
  if (!moved) return undefined
  await rm(join(lockPath(cacheDir, modelId, 'x'), '..'), { recursive: true, force: true })
  return freed
}

/**
 * Removes huggingface_hub's records of one commit, `.no_exist/{commit}/` and `trees/{commit}.json`, and
 * nothing of another commit's. huggingface_hub's own delete strategy leaves them behind; they would
 * only describe a commit the cache no longer holds. They count in no freed size (what they take is
 * a few empty files and one listing).
 */
export async function deleteCommitRecords (cacheDir: string, modelId: string, commit: string): Promise<void> {
  await removeAtomically(repoTrashDirOf(cacheDir, modelId), noExistDir(cacheDir, modelId, commit)).catch(ifMissing(undefined))
  await rm(treeListingPath(cacheDir, modelId, commit), { force: true })
}

/** The commit a revision names: a snapshot folder's name, or what `refs/{revision}` holds. */
export async function resolveCachedCommit (cacheDir: string, modelId: string, revision: string): Promise<string | undefined> {
  const snapshots = await readdir(join(repoDir(cacheDir, modelId), 'snapshots')).catch(ifMissing<string[]>([]))
  if (snapshots.includes(revision)) return revision
  const commit = (await readFile(refPath(cacheDir, modelId, revision), 'utf8').catch(ifMissing('')))
    .trim()
  return snapshots.includes(commit) ? commit : undefined
}

/**
 * The entry in the model's `blobs/` a snapshot file links to, or undefined when the file is no such
 * link (a copied file, a link elsewhere, a dangling or looping one). The entry is what gets deleted,
 * never followed further: a "blob" that is itself a link out of the cache loses only the link.
 */
async function blobEntryOf (file: string, blobsDir: string, realBlobsDir: string | undefined): Promise<string | undefined> {
  const target = await readlink(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EINVAL') return undefined // a regular file: huggingface_hub copies when it cannot link
    throw err
  })
  if (target === undefined) return undefined
  const entry = resolve(dirname(file), target)
  if (dirname(entry) === blobsDir) return entry
  // An absolute link written through another path to the same folder (the cache behind a symlink).
  const parent = await realpath(dirname(entry)).catch(ifMissing(undefined))
  return parent !== undefined && parent === realBlobsDir ? join(blobsDir, basename(entry)) : undefined
}

/**
 * Removes one snapshot, the refs that point at it, the blobs no other snapshot uses and
 * huggingface_hub's records of that commit (`.no_exist/`, `trees/`); the last snapshot takes the
 * whole model with it. Answers what was freed, or undefined when not cached.
 * Only entries of this model's own `blobs/` are deleted: a snapshot link that points anywhere else
 * (out of the cache, into another model) goes with its snapshot, and its target stays.
 */
export async function deleteCachedRevision (cacheDir: string, modelId: string, revision: string): Promise<Freed | undefined> {
  const commit = await resolveCachedCommit(cacheDir, modelId, revision)
  if (commit === undefined) return undefined
  const dir = repoDir(cacheDir, modelId)
  const others = (await readdir(join(dir, 'snapshots'))).filter((name) => name !== commit)
  if (others.length === 0) return deleteCachedModel(cacheDir, modelId)

  const blobs = resolve(blobsDir(cacheDir, modelId))
  const realBlobs = await realpath(blobs).catch(ifMissing(undefined))
  const blobsOf = async (snapshot: string): Promise<Set<string>> => {
    const entries = new Set<string>()
    for (const file of await walkFiles(snapshotDir(cacheDir, modelId, snapshot))) {
      const entry = await blobEntryOf(file, blobs, realBlobs)
      if (entry !== undefined) entries.add(entry)
    }
    return entries
  }
  const kept = new Set<string>()
  for (const other of others) for (const blob of await blobsOf(other)) kept.add(blob)
  const own = [...await blobsOf(commit)].filter((blob) => !kept.has(blob))

  for (const ref of await walkFiles(join(dir, 'refs'))) {
    if ((await readFile(ref, 'utf8')).trim() === commit) await unlink(ref)
  }
  await removeAtomically(repoTrashDirOf(cacheDir, modelId), snapshotDir(cacheDir, modelId, commit))
  await deleteCommitRecords(cacheDir, modelId, commit)
  let freed = 0
  for (const blob of own) {
    // lstat and unlink act on the entry itself: a link is measured and removed, its target is not.
    const size = await lstat(blob).then((stats) => stats.size, ifMissing(undefined))
    if (size === undefined) continue // a dangling link named a blob that is not there
    await unlink(blob)
    freed += size
  }
  // Partials stay: they belong to the model, not to one of its revisions.
  return { blobBytes: freed, partialBytes: 0 }
}
