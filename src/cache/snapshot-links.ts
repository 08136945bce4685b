import { mkdir, readlink, rename, stat, symlink, writeFile } from 'node:fs/promises'
import { dirname, relative } from 'node:path'
import { blobPath, refPath, snapshotFilePath } from './cache-layout.js'
import { temporaryPath } from './cache-temporaries.js'
import { ifMissing } from './cache-scan.js'

/** Is the verified blob in place? Only verified bytes are ever renamed into `blobs/`. */
export async function hasBlob (cacheDir: string, modelId: string, etag: string, size: number): Promise<boolean> {
  const stats = await stat(blobPath(cacheDir, modelId, etag)).catch(ifMissing(undefined))
  return stats?.isFile() === true && stats.size === size
}

/** `_create_symlink`: `snapshots/{commit}/{path}` → a relative link to `blobs/{etag}`, as huggingface_hub makes it. */
export async function createSnapshotLink (cacheDir: string, modelId: string, commit: string, filePath: string, etag: string): Promise<void> {
  const link = snapshotFilePath(cacheDir, modelId, commit, filePath)
  const target = relative(dirname(link), blobPath(cacheDir, modelId, etag))
  if (await readlink(link).catch(() => undefined) === target) return
  await mkdir(dirname(link), { recursive: true })
  // Made aside and renamed into place: a reader never finds the file missing, and two jobs linking
  // the same file at once both succeed. The target is relative to the link's final place.
  const temporary = await temporaryPath(cacheDir, modelId)
  await symlink(target, temporary)
  await rename(temporary, link)
}

/**
 * `_cache_commit_hash_for_specific_revision`: `refs/{revision}` holds the commit. Written last, once
 * every file of the snapshot is verified and linked, so a reader never takes half a snapshot for the revision.
 */
export async function writeRef (cacheDir: string, modelId: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return
  const ref = refPath(cacheDir, modelId, revision)
  await mkdir(dirname(ref), { recursive: true })
  const temporary = await temporaryPath(cacheDir, modelId)
  await writeFile(temporary, commit)
  await rename(temporary, ref)
}
