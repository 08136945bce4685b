import type { FileHandle } from 'node:fs/promises'

/** Bytes gathered before they go to the file in one write, where each network chunk (16–64 KiB) used to be one (issue 18). */
export const BATCH_BYTES = 256 * 1024
/** A batch that has waited this long is written however small it is, so a slow connection's progress still shows. */
export const BATCH_WAIT_MS = 50

/**
 * Writes one part's bytes front to back at their place in the file, gathered into writes of
 * BATCH_BYTES (one `writev` each) instead of one write per network chunk: each write is a hand-over
 * to libuv's pool and back, the main thread's largest cost after hashing. `onWritten` hears of bytes
 * only once they are in the file, in order, so a part's `done` never counts a byte the disk lacks.
 * At most two batches are on their way at once: `add` waits when a third would start.
 */
export class PartWriter {
  private batch: Buffer[] = []
  private batched = 0
  /** Where the next batch goes: bytes before it are written or being written. */
  private position: number
  private writing: Promise<void> = Promise.resolve()
  private failure: unknown = undefined
  private timer: NodeJS.Timeout | undefined

  constructor (private readonly handle: FileHandle, from: number, private readonly onWritten: (bytes: number) => void) {
    this.position = from
  }

  /** Bytes received so far, written or not: where the part's next byte belongs. */
  get received (): number {
    return this.position + this.batched
  }

  /** Takes a chunk; when its batch is full, hands it to a write and waits for the one before. */
  async add (chunk: Buffer): Promise<void> {
    this.throwFailure()
    this.batch.push(chunk)
    this.batched += chunk.length
    if (this.batched < BATCH_BYTES) {
      this.timer ??= setTimeout(() => { this.handOver() }, BATCH_WAIT_MS)
      return
    }
    const before = this.writing
    this.handOver()
    await before
    this.throwFailure()
  }

  /** Writes what is gathered and waits until every byte taken is in the file; throws a write's failure. */
  async flush (): Promise<void> {
    this.handOver()
    await this.writing
    this.throwFailure()
  }

  private handOver (): void {
    this.stopTimer()
    if (this.batched === 0) return
    const chunks = this.batch
    const bytes = this.batched
    const at = this.position
    this.batch = []
    this.batched = 0
    this.position += bytes
    this.writing = this.writing.then(async () => {
      if (this.failure !== undefined) return
      try {
        await writeAllAt(this.handle, chunks, at)
        this.onWritten(bytes)
      } catch (err) {
        this.failure = err
      }
    })
  }

  private stopTimer (): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private throwFailure (): void {
    if (this.failure !== undefined) throw this.failure
  }
}

/** `writev` until every byte is written: a write may take fewer bytes than it was given. */
export async function writeAllAt (handle: FileHandle, chunks: Buffer[], position: number): Promise<void> {
  let left = chunks
  let at = position
  while (left.length > 0) {
    const { bytesWritten } = await handle.writev(left, at)
    if (bytesWritten === 0) throw Object.assign(new Error('the disk took none of the bytes written'), { code: 'EIO' })
    at += bytesWritten
    left = rest(left, bytesWritten)
  }
}

/** What is left of `chunks` once their first `written` bytes are in the file. */
export function rest (chunks: Buffer[], written: number): Buffer[] {
  let skip = written
  let i = 0
  while (i < chunks.length && skip >= chunks[i]!.length) skip -= chunks[i++]!.length
  if (i === chunks.length) return []
  return skip === 0 ? chunks.slice(i) : [chunks[i]!.subarray(skip), ...chunks.slice(i + 1)]
}
