// What the main thread and the hash thread say to each other (hash-pool.ts, hash-worker.ts).

/**
 * Start hashing a file as it is written (`size`, then `written` as its bytes are on disk), or a file
 * that is whole (`whole`: all of it, its size as the thread finds it, and `hashed` told as it goes);
 * the bytes before `end` are on disk; forget a file (its attempt stopped).
 */
export type ToHasher =
  | { type: 'open', id: number, path: string, lfs: boolean, size: number }
  | { type: 'open', id: number, path: string, lfs: boolean, whole: true }
  | { type: 'written', id: number, end: number }
  | { type: 'close', id: number }

/**
 * The file's digest once all of it is hashed, or why it could not be (`code`: the file system's, as
 * ENOENT for a file that is not there); of a whole file, also the bytes hashed since it last said.
 */
export type FromHasher = { id: number, digest: string } | { id: number, error: string, code?: string } | { id: number, hashed: number }
