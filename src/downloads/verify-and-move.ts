import { open, rename, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { RestartFileError } from './restart-file-error.js'

/** A finished partial and the blob it must become. */
export interface FinishedFile { partialPath: string, blobPath: string, size: number, etag: string }

/**
 * Moves the partial into `blobs/{etag}` only if its size and the digest of its bytes are what the Hub
 * promised: a name in blobs/ is a promise about its content. A mismatch is a RestartFileError and
 * leaves the partial where it is, for its owner to throw away.
 */
export async function verifyAndMove (file: FinishedFile, digest: string): Promise<void> {
  const written = (await stat(file.partialPath)).size
  if (written !== file.size || digest !== file.etag) {
    throw new RestartFileError(`checksum mismatch: expected ${file.etag}, got ${digest} over ${written} bytes`)
  }
  await moveIntoBlobs(file.partialPath, file.blobPath)
}

/** `_chmod_and_move`, without the chmod: a rename within the cache, made durable. */
export async function moveIntoBlobs (partialPath: string, blobPath: string): Promise<void> {
  await rename(partialPath, blobPath)
  await syncDirectory(dirname(blobPath))
}

/** Makes a rename durable; a file system that cannot sync a directory is left as it is. */
async function syncDirectory (dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined)
  await handle?.sync().catch(() => {})
  await handle?.close()
}
