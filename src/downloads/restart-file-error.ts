import { RetryableError } from './retry.js'

/**
 * "Start this file again": the partial on disk cannot be continued (the server ignored Range,
 * answered at another offset, or 416), or its bytes do not hash to the etag. Thrown instead of
 * touching the disk, so the one that owns the partial throws it away with its parts state; the next
 * attempt fetches the file from byte 0. DOWNLOADS.md: never "append" to what the server cannot continue.
 */
export class RestartFileError extends RetryableError {
  override name = 'RestartFileError'
}
