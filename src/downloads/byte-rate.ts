import { TokenBucket } from 'limiter'

// A cap on bytes per second, as a token bucket (the `limiter` package): every chunk read from the
// network takes its bytes from it before the next one is read, so the sender is held back by TCP
// itself. A job's bucket has the server's as its parent, so a transfer keeps the smaller cap.
//
// The bucket holds at most a tenth of a second's worth: after a pause in reading, a burst of at most
// that. A waiting reader looks at the rate again when it wakes, so a new cap applies from its next
// wait on (at most UNIT_BYTES at the old rate).

/** Bytes a reader gathers before it waits for them. */
export const UNIT_BYTES = 16 * 1024
/** The smallest cap, in bytes per second. */
export const MAX_BYTES_PER_S_MIN = 64 * 1024

const BURST_S = 0.1
/**
 * Taken from the bucket at once: no more than the smallest bucket (a tenth of the smallest cap's
 * second), which the package refuses to wait for otherwise, even when the cap is lowered while a
 * piece waits.
 */
const PIECE_BYTES = 4096

/** A byte rate: `null` for none. One for the server, and one per job under it. */
export class ByteRate {
  readonly #bucket: TokenBucket
  readonly #parent: ByteRate | undefined
  #bytesPerS: number | null = null

  constructor (bytesPerS: number | null, parent?: ByteRate) {
    this.#parent = parent
    this.#bucket = new TokenBucket({ bucketSize: 0, tokensPerInterval: 1, interval: 'second', ...(parent === undefined ? {} : { parentBucket: parent.#bucket }) })
    this.set(bytesPerS)
  }

  get bytesPerS (): number | null {
    return this.#bytesPerS
  }

  /** A new cap (or none), for the transfers under way too. */
  set (bytesPerS: number | null): void {
    if (bytesPerS !== null && bytesPerS < MAX_BYTES_PER_S_MIN) throw new RangeError(`a byte rate is at least ${MAX_BYTES_PER_S_MIN} bytes per second`)
    this.#bytesPerS = bytesPerS
    // A bucket of size 0 is the package's "no limit". What it holds stays within the new size.
    const bucket = this.#bucket
    bucket.drip()
    bucket.bucketSize = bytesPerS === null ? 0 : Math.ceil(bytesPerS * BURST_S)
    bucket.tokensPerInterval = bytesPerS ?? 1
    bucket.content = Math.min(bucket.content, bucket.bucketSize)
  }

  /** Whether this rate, or the one it is under, caps anything: without a cap, a reader does not count. */
  get capped (): boolean {
    return this.#bytesPerS !== null || this.#parent?.capped === true
  }

  /** Waits until `bytes` more may have been read (at once without a cap), a unit at a time. */
  async take (bytes: number): Promise<void> {
    // An unlimited bucket answers at once without asking its parent: then the parent is asked itself.
    if (this.#bytesPerS === null) {
      if (this.#parent !== undefined) await this.#parent.take(bytes)
      return
    }
    let left = bytes
    // The cap may be lifted (or changed) while this waits: each piece is weighed against the bucket as it is then.
    while (left > 0 && this.#bytesPerS !== null) {
      const piece = Math.min(left, PIECE_BYTES)
      left -= piece
      await this.#bucket.removeTokens(piece)
    }
  }
}
