import type { RetryPolicy } from './retry.js'

export interface DownloadSettings {
  maxConcurrentJobs: number
  fileConcurrency: number
  /** Files larger than this are fetched as range parts of this size (at most MAX_PARTS of them)… */
  partSizeBytes: number
  /** …at most this many of a file's parts at once, front first. */
  connectionsPerFile: number
  /** Open connections per job, whole files and parts together. */
  maxConnectionsPerJob: number
  readTimeoutMs: number
  retry: RetryPolicy
  /** DOWNLOAD_MAX_BYTES_PER_S until a change over the API (limits-store.ts); null for no cap. */
  maxBytesPerS: number | null
}
