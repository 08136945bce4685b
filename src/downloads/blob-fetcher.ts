import { mkdir, open, unlink, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { hashWhileWritten, ProgressSignal } from './file-hasher.js'
import type { ByteRate } from './byte-rate.js'
import { fetchParts } from './part-fetch.js'
import { PartCheckpoints, PartState, type Part } from './part-state.js'
import type { HubConnection } from './range-request.js'
import { RestartFileError } from './restart-file-error.js'
import { resumeParts } from './resume-parts.js'
import { verifyAndMove } from './verify-and-move.js'
import { WriteBack } from './write-back.js'

/** The file to fetch: where it comes from, what it must be, and where it is written. */
export interface BlobFile {
  /** The Hub's resolve URL for the file at its commit. */
  url: string
  size: number
  etag: string
  lfs: boolean
  partialPath: string
  blobPath: string
  /** Where temporary files are written before an atomic rename (inside the cache, same file system). */
  tmpDir: string
}

/** How the job reaches the Hub and its CDN, and how many connections one file may use. */
export interface ConnectionSettings extends HubConnection {
  /** Runs one HTTP request within the job's bound on open connections. */
  connection: <T>(task: () => Promise<T>) => Promise<T>
  /** Files larger than this are fetched as range parts of this size… */
  partSize: number
  /** …at most this many of them at once, front first. */
  connectionsPerFile: number
  /** The cap on bytes per second this file's transfer keeps (the job's, under the server's). */
  rate?: ByteRate | undefined
}

/** What the job hears of the transfer, and how it stops it. */
export interface TransferHooks {
  signal: AbortSignal
  /** Bytes of this file on disk so far (resumed ones included); may restart from 0 after a bad transfer. */
  onPosition: (bytes: number) => void
  /** Bytes that came over the network. */
  onTransferred: (bytes: number) => void
}

/**
 * `_download_to_tmp_and_move`: fetches the file into `blobs/{etag}.modeldepot.incomplete` (a large file as
 * range parts over several connections; whatever is already there is resumed), hashes it in file
 * order while it arrives, and renames it into `blobs/{etag}` only when size and hash match.
 * One attempt; RetryableError says another one may succeed.
 */
export async function downloadToTmpAndMove (blob: BlobFile, settings: ConnectionSettings, hooks: TransferHooks): Promise<void> {
  await mkdir(dirname(blob.partialPath), { recursive: true })
  const state = new PartState(blob.partialPath, blob.tmpDir)
  const parts = await resumeParts(blob, state, settings)
  try {
    const digest = await downloadToTmp(blob, parts, state, settings, hooks)
    await verifyAndMove(blob, digest)
  } catch (err) {
    // Whoever found that the file must start again only said so: the partial is ours (the job holds its lock) to throw away.
    if (err instanceof RestartFileError) await discardPartial(blob.partialPath, state)
    throw err
  }
  await state.remove()
}

/**
 * Fetches what the partial lacks while hashing it in file order; returns the digest once the
 * partial is on disk. Leaves the parts state exactly as the disk is for the next attempt, except
 * after a RestartFileError (a save would revive parts of a file about to be thrown away).
 */
async function downloadToTmp (blob: BlobFile, parts: Part[], state: PartState, settings: ConnectionSettings, hooks: TransferHooks): Promise<string> {
  const { partialPath, size, etag } = blob
  const progress = new ProgressSignal()
  const report = (): void => hooks.onPosition(parts.reduce((sum, part) => sum + part.done, 0))
  report()

  await writeFile(partialPath, '', { flag: 'a' })
  const partial = { path: partialPath, handle: await open(partialPath, 'r+'), size, parts }
  const writeBack = new WriteBack(partial.handle)
  // Stops the part fetchers and the hasher together: on a cancel, or when one of them fails.
  const attempt = new AbortController()
  const stop = (): void => attempt.abort(hooks.signal.reason)
  hooks.signal.addEventListener('abort', stop, { once: true })
  let checkpoints: PartCheckpoints | undefined
  let failure: unknown
  try {
    if (parts.length > 1) {
      await state.save(etag, size, parts)
      checkpoints = new PartCheckpoints(state, etag, size, parts)
    }
    const hashing = hashWhileWritten(partial, blob.lfs, progress, attempt.signal)
    // A hash that fails (a file cut short under it, a hash thread that died) stops the parts too.
    hashing.catch((err: unknown) => attempt.abort(err))
    const onWritten = (bytes: number): void => {
      writeBack.written(bytes)
      hooks.onTransferred(bytes)
      report()
      progress.notify()
    }
    const source = { url: blob.url, hub: settings, connection: settings.connection, connectionsPerFile: settings.connectionsPerFile, rate: settings.rate }
    await fetchParts(source, partial, onWritten, attempt)
    const digest = await hashing
    // On disk before it can be renamed into blobs/, where a name promises its hash even after a power cut.
    await writeBack.idle()
    await partial.handle.sync()
    return digest
  } catch (err) {
    failure = hooks.signal.aborted ? hooks.signal.reason : (attempt.signal.reason ?? err)
    throw failure
  } finally {
    hooks.signal.removeEventListener('abort', stop)
    await checkpoints?.stop()
    await writeBack.idle()
    await partial.handle.close()
    if (parts.length > 1 && !(failure instanceof RestartFileError)) await state.save(etag, size, parts).catch(() => {})
  }
}

/** The next attempt starts from byte 0: neither the bytes nor the parts that described them are trusted. */
async function discardPartial (partialPath: string, state: PartState): Promise<void> {
  await unlink(partialPath).catch(() => {})
  await state.remove()
}
