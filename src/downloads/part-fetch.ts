import pLimit from 'p-limit'
import { UNIT_BYTES, type ByteRate } from './byte-rate.js'
import type { PartialFile, Part } from './part-state.js'
import { PartWriter } from './part-writer.js'
import { codeOf, FileAddress, openRange, type HubConnection } from './range-request.js'
import { RetryableError } from './retry.js'

/** Where a file's parts come from, and the job's bound on open connections. */
export interface PartSource {
  url: string
  /** Where the file's bytes are served from once the Hub has said (its CDN), shared by its parts; one of its own otherwise. */
  address?: FileAddress | undefined
  hub: HubConnection
  /** At most this many of the file's parts at once, front first; all of them when absent. */
  connectionsPerFile?: number | undefined
  /** Runs one HTTP request within the job's bound on open connections. */
  connection: <T>(task: () => Promise<T>) => Promise<T>
  /** The job's cap on bytes per second (under the server's): the next chunk is read once these may have come. */
  rate?: ByteRate | undefined
}

/**
 * Fetches every unfinished part of the file, each over its own connection, at most
 * `connectionsPerFile` at once and front first: the front of the file is complete early, so the hash
 * (which reads it in file order) keeps up with the bytes instead of waiting for the first part to
 * end. The first part that fails aborts `attempt`, which stops the others (and whoever else follows
 * it, the hasher); each keeps what it wrote for the next attempt. A part still waiting for its turn
 * then fails at once without a request. Throws that first failure.
 */
export async function fetchParts (source: PartSource, partial: PartialFile, onWritten: (bytes: number) => void, attempt: AbortController): Promise<void> {
  const from: PartSource = { ...source, address: source.address ?? new FileAddress(source.url) }
  const perFile = pLimit(source.connectionsPerFile ?? partial.parts.length)
  const fetching = partial.parts.filter((part) => part.done < part.length).map(async (part) => perFile(async () => {
    attempt.signal.throwIfAborted()
    await source.connection(async () => {
      attempt.signal.throwIfAborted()
      await fetchPart(from, partial, part, onWritten, attempt.signal)
    })
  }))
  await Promise.all(fetching.map(async (fetch) => fetch.catch((err: unknown) => {
    attempt.abort(err)
    throw err
  })))
}

/**
 * Streams one part into its place in the file; `done` grows only after its bytes are written (in
 * batches: see PartWriter). Bytes that came before a broken transfer are written before it is
 * reported, so the next attempt resumes after them.
 */
export async function fetchPart (source: PartSource, partial: PartialFile, part: Part, onWritten: (bytes: number) => void, signal: AbortSignal): Promise<void> {
  const from = part.start + part.done
  const end = part.start + part.length
  // A single stream asks for the rest of the file, as huggingface_hub does; a part for its own range.
  const response = await openRange(source.address ?? source.url, source.hub, from, partial.parts.length === 1 ? undefined : end - 1, signal)
  const writer = new PartWriter(partial.handle, from, (bytes) => {
    part.done += bytes
    onWritten(bytes)
  })
  const rate = source.rate
  let owed = 0
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      if (writer.received + chunk.length > end) throw new RetryableError(`the server sent more than the ${part.length} bytes asked for`)
      await writer.add(chunk)
      // Capped: nothing more is read (so TCP holds the sender back) until the bytes read may have been.
      if (rate !== undefined && (owed += chunk.length) >= UNIT_BYTES && rate.capped) {
        await rate.take(owed)
        owed = 0
      }
    }
    await writer.flush()
  } catch (err) {
    // What came before a break, a pause or a cancel is good: it goes to the file first, so the next
    // attempt resumes after it (a write that fails now is that attempt's to find).
    await writer.flush().catch(() => {})
    // A full disk or a cancel is not a network fault: no retry.
    if (signal.aborted || (err as NodeJS.ErrnoException).code === 'ENOSPC' || err instanceof RetryableError) throw err
    throw new RetryableError(`the transfer broke off at byte ${writer.received} of ${partial.size} (${codeOf(err)})`)
  }
  if (part.done < part.length) throw new RetryableError(`the transfer ended early at byte ${part.start + part.done} of ${partial.size}`)
}
