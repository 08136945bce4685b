import type { RetryPolicy } from './retry.js'

export interface DownloadSettings {
  maxConcurrentJobs: number
  fileConcurrency: number
  /** Files larger than this are fetched as range parts over several connections. */
  partSizeBytes: number
  maxPartsPerFile: number
  /** Open connections per job, whole files and parts together. */
  maxConnectionsPerJob: number
  readTimeoutMs: number
  retry: RetryPolicy
}
