import type { ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FileBytes } from './fake-hub-repo.js'

// How a FakeHub sends file bytes: byte ranges, and the faults a test injects into a download.

/**
 * A fault for the next responses that carry file bytes: a GET of a regular file on resolve/, or a
 * GET on the CDN. HEADs and the redirect of an LFS file carry none, so they never consume one.
 */
export interface Fault {
  /**
   * 'ignore-range': answer a Range request with the whole file and 200, as some servers do.
   * 'redirect': answer 302 to `location` instead of the bytes.
   */
  kind: 'reset' | 'status' | 'corrupt' | 'slow' | 'stall' | 'ignore-range' | 'redirect'
  /** Repo file path it applies to; undefined for any file. */
  path?: string
  /** Matching requests it affects before it is used up; default 1. */
  times?: number
  /** For 'status': sent with an empty body. */
  status?: number
  /** For 'status' (429): the Retry-After header, in seconds. */
  retryAfter?: number
  /** For 'reset', 'stall', 'corrupt': the body offset of the cut or of the flipped byte; default half the body. */
  afterBytes?: number
  /** For a fault in an API answer: at the first occurrence of this text in the JSON body, instead of `afterBytes`. */
  atText?: string
  /** For 'slow'. */
  bytesPerSecond?: number
  /** For 'redirect'. */
  location?: string
}

/** Inclusive, like the numbers in a Range header. */
export interface ByteRange { start: number, end: number }

const CHUNK_BYTES = 64 * 1024

/**
 * Reads a `Range` header the way a CDN does: one range in any of the three forms, anything else
 * (several ranges, another unit, garbage) ignored so the whole body is served with 200.
 */
export function parseRange (header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!match || (match[1] === '' && match[2] === '')) return undefined
  const [, first = '', last = ''] = match
  if (first === '') {
    // bytes=-N is the last N bytes.
    const suffix = Number(last)
    if (suffix === 0 || size === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(first)
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1)
  if (last !== '' && Number(last) < start) return undefined
  if (start >= size) return 'unsatisfiable'
  return { start, end }
}

/**
 * Streams bytes `range` of `content` in chunks, waiting for each to reach the socket (backpressure),
 * and plays the fault if any. Only one chunk is in memory at a time, so generated content of any
 * size streams in constant memory. Resolves when the body is sent, the connection is gone, or a
 * stall has begun.
 */
export async function streamBody (
  res: ServerResponse,
  content: FileBytes,
  range: ByteRange,
  fault: Fault | undefined,
  onBytes: (count: number) => void
): Promise<void> {
  const length = range.end + 1 - range.start
  const cut = Math.min(Math.max(fault?.afterBytes ?? Math.floor(length / 2), 0), length)
  const stops = fault?.kind === 'reset' || fault?.kind === 'stall'
  const limit = stops ? cut : length
  const bytesPerSecond = fault?.kind === 'slow' ? Math.max(1, fault.bytesPerSecond ?? 64 * 1024) : undefined
  // A slow body goes out in about twenty pieces a second, so a client sees a steady trickle.
  const chunkBytes = bytesPerSecond ? Math.max(1, Math.min(CHUNK_BYTES, Math.floor(bytesPerSecond / 20))) : CHUNK_BYTES

  const gone = new AbortController()
  res.once('close', () => gone.abort())
  // Headers go out now, so a stall at byte 0 is a stall after the headers, not before them.
  res.flushHeaders()

  for (let offset = 0, end = 0; offset < limit && !gone.signal.aborted; offset = end) {
    // Chunks end on multiples of their size in the file, so a generated block is sent without a copy.
    end = Math.min((Math.floor((range.start + offset) / chunkBytes) + 1) * chunkBytes - range.start, limit)
    let chunk = content.subarray(range.start + offset, range.start + end)
    if (fault?.kind === 'corrupt' && cut >= offset && cut < end) {
      // A copy: the stored content stays intact for the next request.
      chunk = Buffer.from(chunk)
      chunk[cut - offset] = (chunk[cut - offset] ?? 0) ^ 0xff
    }
    // Waiting before each piece, not after, makes the whole body take size / bytesPerSecond.
    if (bytesPerSecond) await sleep((chunk.length / bytesPerSecond) * 1000, undefined, { signal: gone.signal }).catch(() => {})
    if (gone.signal.aborted) return
    await writeChunk(res, chunk, gone.signal)
    if (gone.signal.aborted) return
    onBytes(chunk.length)
  }
  if (gone.signal.aborted) return
  // A plain close (FIN) rather than a TCP RST, so the client reliably receives the bytes before the cut.
  if (fault?.kind === 'reset') res.destroy()
  else if (fault?.kind !== 'stall') res.end()
  // A stall keeps the socket open until the client gives up or FakeHub.close() destroys it.
}

function writeChunk (res: ServerResponse, chunk: Buffer, gone: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      gone.removeEventListener('abort', done)
      resolve()
    }
    gone.addEventListener('abort', done, { once: true })
    // The callback runs once the chunk reached the socket; a dropped connection resolves through `gone`.
    res.write(chunk, done)
  })
}
