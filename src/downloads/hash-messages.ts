// What the main thread and the hash thread say to each other (hash-pool.ts, hash-worker.ts).

/** Start hashing a file; the bytes before `end` are on disk; forget a file (its attempt stopped). */
export type ToHasher =
  | { type: 'open', id: number, path: string, lfs: boolean, size: number }
  | { type: 'written', id: number, end: number }
  | { type: 'close', id: number }

/** The file's digest once all of it is hashed, or why it could not be. */
export type FromHasher = { id: number, digest: string } | { id: number, error: string }
