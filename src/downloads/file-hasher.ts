import { createHash, type Hash } from 'node:crypto'
import { HASH_IN_WORKER_BYTES, hashPool } from './hash-pool.js'
import { contiguousEnd, type PartialFile } from './part-state.js'
import { RetryableError } from './retry.js'

// sha256 for LFS files; for the rest the git blob id, sha1 over "blob <size>\0" + content.
export function newHasher (lfs: boolean, size: number): Hash {
  if (lfs) return createHash('sha256')
  return createHash('sha1').update(`blob ${size}\0`)
}

const HASH_CHUNK = 4 * 1024 * 1024

/**
 * The partial's digest, hashed in file order while its parts land: a large file on a hash thread
 * (hash-pool.ts), so the main thread only moves bytes; a small one here, where a thread would cost more.
 */
export async function hashWhileWritten (partial: PartialFile, lfs: boolean, progress: ProgressSignal, signal: AbortSignal): Promise<string> {
  if (partial.size >= HASH_IN_WORKER_BYTES) return hashPool.hashInFileOrder(partial, lfs, progress, signal)
  return hashInFileOrder(partial, newHasher(lfs, partial.size), progress, signal)
}

/**
 * Hashes the file front to back as its parts land, reading back what is on disk in large chunks
 * (a resumed partial is hashed from disk first): the digest exists the moment the last byte does,
 * with no second pass over the file. Waits on `progress` while the next byte is not there yet.
 */
export async function hashInFileOrder (partial: PartialFile, hasher: Hash, progress: ProgressSignal, signal: AbortSignal): Promise<string> {
  const { handle, parts, size } = partial
  const buffer = Buffer.allocUnsafe(HASH_CHUNK)
  let hashed = 0
  while (hashed < size) {
    const end = contiguousEnd(parts)
    if (end <= hashed) {
      await progress.next(signal)
      continue
    }
    while (hashed < end) {
      // A resumed partial of many GiB takes a while to read back: a cancel or a shutdown stops it here.
      signal.throwIfAborted()
      const { bytesRead } = await handle.read(buffer, 0, Math.min(HASH_CHUNK, end - hashed), hashed)
      if (bytesRead === 0) throw new RetryableError(`the partial file is shorter than its recorded progress at byte ${hashed}`)
      hasher.update(buffer.subarray(0, bytesRead))
      hashed += bytesRead
    }
  }
  return hasher.digest('hex')
}

/** Wakes the hasher whenever a part writes bytes. */
export class ProgressSignal {
  #waiters: Array<() => void> = []

  notify (): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const wake of waiters) wake()
  }

  async next (signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw signal.reason
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason)
      signal.addEventListener('abort', onAbort, { once: true })
      this.#waiters.push(() => {
        signal.removeEventListener('abort', onAbort)
        resolve()
      })
    })
  }
}
