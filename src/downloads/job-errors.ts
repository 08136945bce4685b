import { errorCode, isOwnError } from '../error-code.js'
import { HINTS, JOB_END_CODES, MdInsufficientStorageError } from '../errors.js'
import type { JobError } from './download-job.js'

// How a job's end is told: the errors a job can end with, in the job's own shape.

// A shutdown is not a failure: the job stays unfinished in the journal and resumes at the next start.
export const SHUTDOWN_BEFORE_START: JobError = {
  code: JOB_END_CODES.serverShutdown,
  message: 'The server shut down before this download started; it starts when the server starts again'
}
export const SHUTDOWN_DURING: JobError = {
  code: JOB_END_CODES.serverShutdown,
  message: 'The server shut down during this download; it resumes where it stopped when the server starts again'
}

export function insufficientStorage (modelId: string, needed: number, free: number): MdInsufficientStorageError {
  const message = `Not enough free disk space for ${modelId}: ${needed} bytes are needed and ${free} are free`
  return new MdInsufficientStorageError(message, { neededBytes: needed, freeBytes: free })
}

/** What a job shows of the error that ended it: our code and hint, or MD_DOWNLOAD_FAILED. */
export function jobError (err: unknown): JobError {
  if (errorCode(err) === 'ENOSPC') {
    err = new MdInsufficientStorageError('The disk filled up during the download; the verified files and the partial one are kept')
  }
  const code = errorCode(err)
  const message = err instanceof Error ? err.message : String(err)
  if (code !== undefined && isOwnError(err)) return { code, message, ...(HINTS[code] === undefined ? {} : { hint: HINTS[code] }) }
  return { code: JOB_END_CODES.downloadFailed, message, hint: HINTS.MD_DOWNLOAD_FAILED! }
}
