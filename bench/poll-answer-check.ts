import { Compile } from 'typebox/compile'
import { DownloadProgress } from '../routes/schemas/downloads.js'
import { DownloadJobSchema } from '../src/downloads/download-job.js'

// What makes a poll's answer valid: the body the route's own response schema promises (the same
// schemas the OpenAPI document is made of, compiled once), for the job that was asked about, with
// numbers that make sense for it. A 200 with a wrong or half-written body counts as an error.

/** How a client polls: a quick progress read, the job resource, or a long poll (wait=) on progress. */
export type PollKind = 'progress' | 'job' | 'long-poll'
export const POLL_KINDS: readonly PollKind[] = ['progress', 'job', 'long-poll']

export interface ExpectedJob { jobId: string, modelId: string, bytesTotal: number }

const progressSchema = Compile(DownloadProgress)
const jobSchema = Compile(DownloadJobSchema)

interface Seen { status: string, bytes_downloaded: number }

/**
 * The job the answer shows, or why it is not a valid answer about `expected`. `previous` is what the
 * same client saw last: with no fault injected, bytes downloaded never go back.
 */
export function checkPollAnswer (kind: PollKind, text: string, expected: ExpectedJob, previous: number): { job: Seen } | { invalid: string } {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return { invalid: `not JSON: ${text.slice(0, 120)}` }
  }
  const schema = kind === 'job' ? jobSchema : progressSchema
  if (!schema.Check(body)) {
    const first = [...schema.Errors(body)][0]
    return { invalid: `does not match the ${kind === 'job' ? 'DownloadJob' : 'DownloadProgress'} schema: ${first?.instancePath ?? ''} ${first?.message ?? ''}` }
  }
  const job = body as { job_id: string, model_id: string, status: string, bytes_total: number, bytes_downloaded: number }
  if (job.job_id !== expected.jobId) return { invalid: `job_id ${job.job_id}, asked for ${expected.jobId}` }
  if (job.model_id !== expected.modelId) return { invalid: `model_id ${job.model_id}, expected ${expected.modelId}` }
  if (job.status === 'error' || job.status === 'cancelled') return { invalid: `the job ended ${job.status}` }
  if (job.bytes_total !== expected.bytesTotal) return { invalid: `bytes_total ${job.bytes_total}, expected ${expected.bytesTotal}` }
  if (job.bytes_downloaded < 0 || job.bytes_downloaded > job.bytes_total) return { invalid: `bytes_downloaded ${job.bytes_downloaded} of ${job.bytes_total}` }
  if (job.bytes_downloaded < previous) return { invalid: `bytes_downloaded went back from ${previous} to ${job.bytes_downloaded}` }
  return { job }
}
