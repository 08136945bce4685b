import type { FileHandle } from 'node:fs/promises'

/** Bytes written to a file between two background flushes. */
export const WRITE_BACK_BYTES = 64 * 1024 * 1024

/**
 * Flushes a partial file to the disk in the background as its bytes arrive (`fdatasync` after every
 * WRITE_BACK_BYTES, never two at once), so that the fsync before the blob is named finds little
 * left to write: with 2 GiB of a download dirty in the page cache, that fsync alone took about half
 * a second after the last byte came (issue 18). The flush that counts is still that last fsync: a
 * background one that fails is left to it to find.
 */
export class WriteBack {
  #unflushed = 0
  #flushing: Promise<void> | undefined

  constructor (private readonly handle: FileHandle) {}

  /** Counts bytes just written; starts a flush once enough have been and none is under way. */
  written (bytes: number): void {
    this.#unflushed += bytes
    if (this.#unflushed < WRITE_BACK_BYTES || this.#flushing !== undefined) return
    this.#unflushed = 0
    this.#flushing = this.handle.datasync().catch(() => {}).finally(() => { this.#flushing = undefined })
  }

  /** Resolves when no background flush is under way (before the file is synced or closed). */
  async idle (): Promise<void> {
    await this.#flushing
  }
}
