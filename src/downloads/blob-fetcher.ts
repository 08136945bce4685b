import { createHash, type Hash } from 'node:crypto'
import { mkdir, open, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { request, type Dispatcher } from 'undici'
import { errorCode } from '../error-code.js'
import { hubError, type HubAnswer } from '../hub/hub-client.js'
import { contiguousEnd, PartCheckpoints, planParts, PartState, type Part } from './part-state.js'
import { parseRetryAfter, RetryableError } from './retry.js'

export interface BlobTransfer {
  /** The Hub's resolve URL for the file at its commit. */
  url: string
  /**
   * Sent to the Hub only (a redirect to another host, the CDN, drops them); read as each request is
   * sent, so a token rotated mid-download is used by the next part or retry, never the revoked one.
   */
  hubHeaders: () => Record<string, string>
  endpoint: string
  partialPath: string
  blobPath: string
  /** Where temporary files are written before an atomic rename (inside the cache, same file system). */
  tmpDir: string
  size: number
  etag: string
  lfs: boolean
  readTimeoutMs: number
  /** Files larger than this are split into range parts fetched in parallel… */
  partSize: number
  /** …at most this many per file. */
  maxParts: number
  /** Sends a request to the Hub itself (not its CDN) through the huggingface provider. */
  throughHub: <T extends HubAnswer>(request: () => Promise<T>) => Promise<T>
  /** Runs one HTTP request within the job's bound on open connections. */
  connection: <T>(task: () => Promise<T>) => Promise<T>
  signal: AbortSignal
  /** Bytes of this file on disk so far (resumed ones included); may restart from 0 after a bad transfer. */
  onPosition: (bytes: number) => void
  /** Bytes that came over the network. */
  onTransferred: (bytes: number) => void
}

// sha256 for LFS files; for the rest the git blob id, sha1 over "blob <size>\0" + content.
function newHasher (lfs: boolean, size: number): Hash {
  if (lfs) return createHash('sha256')
  return createHash('sha1').update(`blob ${size}\0`)
}

const HASH_CHUNK = 4 * 1024 * 1024

/**
 * `_download_to_tmp_and_move`: fetches the file into `blobs/{etag}.incomplete` (a large file as
 * range parts over several connections; whatever is already there is resumed), hashes it in file
 * order while it arrives, and renames it into `blobs/{etag}` only when size and hash match.
 * One attempt; RetryableError says another one may succeed.
 */
export async function downloadToTmpAndMove (transfer: BlobTransfer): Promise<void> {
  const { partialPath, size, etag } = transfer
  await mkdir(dirname(partialPath), { recursive: true })
  const state = new PartState(partialPath, transfer.tmpDir)
  const parts = await resumeParts(transfer, state)
  const progress = new ProgressSignal()
  const report = (): void => transfer.onPosition(parts.reduce((sum, part) => sum + part.done, 0))
  report()

  await writeFile(partialPath, '', { flag: 'a' })
  const file = await open(partialPath, 'r+')
  const attempt = new AbortController()
  const stop = (): void => attempt.abort(transfer.signal.reason)
  transfer.signal.addEventListener('abort', stop, { once: true })
  let digest: string
  let checkpoints: PartCheckpoints | undefined
  let discarded = false
  try {
    if (parts.length > 1) {
      await state.save(etag, size, parts)
      checkpoints = new PartCheckpoints(state, etag, size, parts)
    }
    const hashing = hashInFileOrder(file, parts, newHasher(transfer.lfs, size), size, progress, attempt.signal)
    hashing.catch(() => {}) // its failure is the fetch's failure, reported below
    const fetching = parts.filter((part) => part.done < part.length).map(async (part) => transfer.connection(async () => {
      await fetchPart(transfer, file, part, parts.length === 1, () => { report(); progress.notify() }, attempt.signal)
    }))
    // One part that fails stops the others; each keeps what it wrote for the next attempt.
    await Promise.all(fetching.map(async (fetch) => fetch.catch((err: unknown) => {
      attempt.abort(err)
      throw err
    })))
    digest = await hashing
    // On disk before it can be renamed into blobs/, where a name promises its hash even after a power cut.
    await file.sync()
  } catch (err) {
    throw transfer.signal.aborted ? transfer.signal.reason : (attempt.signal.reason ?? err)
  } finally {
    transfer.signal.removeEventListener('abort', stop)
    await checkpoints?.stop()
    // A part that met a server unable to resume threw the file away, whichever part failed first.
    discarded = !(await isStillAt(file, partialPath).catch(() => false))
    await file.close()
    // The exact state for the next attempt, unless the file was thrown away (a save would revive it).
    if (parts.length > 1 && !discarded) await state.save(etag, size, parts).catch(() => {})
    if (discarded) await state.remove()
  }

  const written = (await stat(partialPath)).size
  if (written !== size || digest !== etag) {
    await unlink(partialPath)
    await state.remove()
    throw new RetryableError(`checksum mismatch: expected ${etag}, got ${digest} over ${written} bytes`)
  }
  await rename(partialPath, transfer.blobPath)
  await syncDirectory(dirname(transfer.blobPath))
  await state.remove()
}

/** Is the open file still the one at `path` (not unlinked, not replaced)? */
async function isStillAt (file: FileHandle, path: string): Promise<boolean> {
  const [open, named] = await Promise.all([file.stat(), stat(path).catch(() => undefined)])
  return named !== undefined && named.ino === open.ino && named.dev === open.dev
}

/** Makes a rename durable; a file system that cannot sync a directory is left as it is. */
async function syncDirectory (dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined)
  await handle?.sync().catch(() => {})
  await handle?.close()
}

/** The parts to fetch, with what an earlier attempt, run or process left on disk already counted. */
async function resumeParts (transfer: BlobTransfer, state: PartState): Promise<Part[]> {
  const { size, etag, partialPath } = transfer
  const saved = await state.load(etag, size)
  if (saved !== undefined) return saved
  // Without saved parts, only a plain prefix is trusted (a single-stream partial, ours or an older one).
  let prefix = (await stat(partialPath).catch(() => undefined))?.size ?? 0
  if (prefix > size) {
    await unlink(partialPath)
    prefix = 0
  }
  prefix = Math.min(prefix, await state.staleContiguousEnd() ?? prefix)
  return planParts(size, transfer.partSize, transfer.maxParts)
    .map((part) => ({ ...part, done: Math.max(0, Math.min(part.length, prefix - part.start)) }))
}

/** Hashes the file front to back as parts land, reading back what is on disk in large chunks. */
async function hashInFileOrder (file: FileHandle, parts: readonly Part[], hasher: Hash, size: number, progress: ProgressSignal, signal: AbortSignal): Promise<string> {
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
      const { bytesRead } = await file.read(buffer, 0, Math.min(HASH_CHUNK, end - hashed), hashed)
      if (bytesRead === 0) throw new RetryableError(`the partial file is shorter than its recorded progress at byte ${hashed}`)
      hasher.update(buffer.subarray(0, bytesRead))
      hashed += bytesRead
    }
  }
  return hasher.digest('hex')
}

/** Streams one part into its place in the file; `done` grows only after its bytes are written. */
async function fetchPart (transfer: BlobTransfer, file: FileHandle, part: Part, whole: boolean, onBytes: () => void, signal: AbortSignal): Promise<void> {
  const from = part.start + part.done
  const to = part.start + part.length - 1
  // A single stream asks for the rest of the file, as huggingface_hub does; a part for its own range.
  const response = await openRange(transfer, from, whole ? undefined : to, signal)
  if (response.statusCode === 200 && from > 0) {
    await response.body.dump().catch(() => {})
    // The server ignores Range: only a single stream from byte 0 can work with it.
    await unlink(transfer.partialPath).catch(() => {})
    throw new RetryableError(`the server ignored a Range request at byte ${from}; the file is fetched again`)
  }
  let position = from
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      if (position + chunk.length > part.start + part.length) throw new RetryableError(`the server sent more than the ${part.length} bytes asked for`)
      await file.write(chunk, 0, chunk.length, position)
      position += chunk.length
      part.done += chunk.length
      transfer.onTransferred(chunk.length)
      onBytes()
    }
  } catch (err) {
    // A full disk or a cancel is not a network fault: no retry.
    if (signal.aborted || (err as NodeJS.ErrnoException).code === 'ENOSPC' || err instanceof RetryableError) throw err
    throw new RetryableError(`the transfer broke off at byte ${position} of ${transfer.size} (${codeOf(err)})`)
  }
  if (part.done < part.length) throw new RetryableError(`the transfer ended early at byte ${position} of ${transfer.size}`)
}

type Body = Dispatcher.ResponseData['body']

/** GET bytes `from`–`to` (or the whole file), following the Hub's redirect to its CDN; answers 200 or a matching 206. */
async function openRange (transfer: BlobTransfer, from: number, to: number | undefined, signal: AbortSignal): Promise<{ statusCode: number, body: Body }> {
  let url = new URL(transfer.url)
  let hubHeaders = transfer.hubHeaders
  const range: Record<string, string> = from === 0 && to === undefined ? {} : { range: `bytes=${from}-${to ?? ''}` }
  for (let hop = 0; hop < 5; hop++) {
    const response = await send(url, () => ({ ...hubHeaders(), ...range }), transfer, signal)
    const { statusCode } = response
    if (statusCode >= 300 && statusCode < 400) {
      const location = response.headers.location
      await response.body.dump()
      if (typeof location !== 'string') throw new RetryableError(`the Hub answered ${statusCode} without a Location`)
      const next = new URL(location, url)
      if (next.host !== url.host) hubHeaders = () => ({})
      url = next
      continue
    }
    if (statusCode === 200) return response
    if (statusCode === 206 && contentRangeStart(response.headers['content-range']) === from) return response
    await response.body.dump().catch(() => {})
    if (statusCode === 206 || statusCode === 416) {
      // A range we did not ask for, or a partial the server cannot continue: start over.
      await unlink(transfer.partialPath).catch(() => {})
      throw new RetryableError(`the server could not resume at byte ${from} (${statusCode}); the file is fetched again`)
    }
    if (statusCode === 429 || statusCode >= 500) {
      const retryAfter = response.headers['retry-after']
      throw new RetryableError(`the server answered ${statusCode}`, parseRetryAfter(typeof retryAfter === 'string' ? retryAfter : undefined))
    }
    throw await hubError(new Response(null, { status: statusCode, headers: flatHeaders(response.headers) }), transfer.endpoint)
  }
  throw new RetryableError('too many redirects')
}

async function send (url: URL, headers: () => Record<string, string>, transfer: BlobTransfer, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
  // The headers are made when the Hub's limiter lets the request go, not when it was queued.
  const get = async (): Promise<Dispatcher.ResponseData> => request(url, {
    method: 'GET',
    headers: headers(),
    signal,
    // No bytes for this long, before the first byte or between two, is a stall.
    headersTimeout: transfer.readTimeoutMs,
    bodyTimeout: transfer.readTimeoutMs
  })
  try {
    // The Hub shares its backoff with every other call to it; the CDN is not the Hub.
    return url.host === new URL(transfer.endpoint).host ? await transfer.throughHub(get) : await get()
  } catch (err) {
    if (signal.aborted) throw err
    const refused = providerRefusal(err)
    if (refused !== undefined) throw new RetryableError(`the Hub is ${refused.status} (it takes calls again in ${refused.retryAfterS} s)`, refused.retryAfterS * 1000)
    throw new RetryableError(`the request to ${url.host} failed (${codeOf(err)})`)
  }
}

/** The huggingface provider refused to send (it cools down): when it will take calls again. */
function providerRefusal (err: unknown): { status: string, retryAfterS: number } | undefined {
  const { code, details } = err as { code?: string, details?: { status?: string, retry_after_s?: number } }
  if (code !== 'MD_PROVIDER_UNAVAILABLE' || details?.status === undefined) return undefined
  return { status: details.status, retryAfterS: details.retry_after_s ?? 0 }
}

/** Wakes the hasher whenever a part writes bytes. */
class ProgressSignal {
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

function contentRangeStart (value: unknown): number | undefined {
  const match = typeof value === 'string' ? /^bytes (\d+)-/.exec(value) : null
  return match === null ? undefined : Number(match[1])
}

function flatHeaders (headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value
  return out
}

function codeOf (err: unknown): string {
  return errorCode(err) ?? (err as Error).message
}
