import { createHash } from 'node:crypto'

// File bytes made on demand from a seed, for files of a GiB and more (benchmarks): nothing is kept
// but one block, so a FakeHub can serve them without holding them in memory or in git.

const BLOCK_BYTES = 1024 * 1024
const HASH_CHUNK_BYTES = 4 * 1024 * 1024

/**
 * `length` deterministic bytes: block k (of 1 MiB) is one pseudo-random block per seed, rotated by
 * an amount that depends on k, so no two blocks within 1 TiB are alike (a swapped or repeated block
 * changes the hash). No byte is ever 0, so a hole in a sparse file (zeros) never passes for content.
 *
 * Reads like a Buffer: `length` and `subarray(start, end)`. A range inside one block is a view of
 * the shared block (no copy, so fast to serve); never write into what `subarray` returns.
 */
export class GeneratedContent {
  static readonly BLOCK_BYTES = BLOCK_BYTES
  readonly length: number
  readonly seed: number
  /** The block twice over, so every rotation of it is one contiguous view. */
  readonly #twice: Buffer
  #sha256: string | undefined

  constructor (seed: number, length: number) {
    if (!Number.isSafeInteger(length) || length < 0) throw new Error(`length must be a whole number of bytes: ${length}`)
    this.seed = seed
    this.length = length
    const block = seededBlock(seed)
    this.#twice = Buffer.concat([block, block])
  }

  /** Bytes `start` to `end` (exclusive), clamped to the content like Buffer#subarray. */
  subarray (start = 0, end = this.length): Buffer {
    const from = Math.max(0, Math.min(start, this.length))
    const to = Math.max(from, Math.min(end, this.length))
    const pieces: Buffer[] = []
    for (let offset = from; offset < to;) {
      const index = Math.floor(offset / BLOCK_BYTES)
      const within = offset - index * BLOCK_BYTES
      const count = Math.min(BLOCK_BYTES - within, to - offset)
      const begin = rotation(index) + within
      pieces.push(this.#twice.subarray(begin, begin + count))
      offset += count
    }
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, to - from)
  }

  /** The sha256 of all the bytes, computed once by streaming through them (about a second per GiB). */
  get sha256 (): string {
    if (this.#sha256 === undefined) {
      const hash = createHash('sha256')
      for (let offset = 0; offset < this.length; offset += HASH_CHUNK_BYTES) hash.update(this.subarray(offset, offset + HASH_CHUNK_BYTES))
      this.#sha256 = hash.digest('hex')
    }
    return this.#sha256
  }
}

/** An odd multiplier modulo the block size (a power of two) takes every value once per 2^20 blocks. */
function rotation (index: number): number {
  return (index * 40503) % BLOCK_BYTES
}

/** A block of xorshift32 output with zeros replaced, different for each seed. */
function seededBlock (seed: number): Buffer {
  const block = Buffer.allocUnsafe(BLOCK_BYTES)
  let state = (Math.imul(seed, 2654435761) + 1) >>> 0 || 1
  for (let i = 0; i < BLOCK_BYTES; i++) {
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    block[i] = (state & 0xff) || 0x5a
  }
  return block
}
