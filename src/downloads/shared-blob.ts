import { createReadStream } from 'node:fs'
import { rename, stat } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { newHasher } from './file-hasher.js'

// What modeldepot does with what other writers of the same cache (huggingface_hub, an earlier
// modeldepot) leave in blobs/, once it holds both locks of a blob, so nobody else writes it now.

/** The blob to check: its promised size and hash (sha256 for LFS, the git blob sha1 for the rest). */
export interface ExpectedBlob { path: string, size: number, etag: string, lfs: boolean }

/**
 * Whether `blobs/{etag}`, which another program finished while we waited for its lock, is the file
 * it is named after. Read back once (a cancel stops it); a blob that is not (the wrong size, or the
 * wrong bytes) is fetched again and replaced by one atomic rename, so a reader never finds it missing.
 */
export async function blobMatches (blob: ExpectedBlob, signal: AbortSignal): Promise<boolean> {
  const stats = await stat(blob.path).catch(() => undefined)
  if (stats === undefined || !stats.isFile() || stats.size !== blob.size) return false
  const hasher = newHasher(blob.lfs, blob.size)
  await pipeline(createReadStream(blob.path, { highWaterMark: 4 * 1024 * 1024 }), hasher, { signal })
  return hasher.digest('hex') === blob.etag
}

/**
 * Takes over the partial a writer of the shared name left (`blobs/{etag}.incomplete`: an earlier
 * modeldepot's, with its parts state, or a huggingface_hub download that died), by renaming it to
 * modeldepot's own name, when modeldepot has none of its own for that blob. Its bytes are trusted no
 * more than ours: a plain prefix, or the saved parts, and the hash decides. The parts state moves
 * first: a kill between the two renames leaves the partial under the shared name, taken over next time.
 * Answers whether it did.
 */
export async function adoptSharedPartial (sharedPath: string, ownPath: string): Promise<boolean> {
  if (await stat(ownPath).catch(() => undefined) !== undefined) return false
  if (await stat(sharedPath).catch(() => undefined) === undefined) return false
  await rename(`${sharedPath}.parts.json`, `${ownPath}.parts.json`).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err
  })
  await rename(sharedPath, ownPath)
  return true
}
