import { Agent, request } from 'undici'
import { API_KEY } from './modeldepot-server.js'

// The calls a user makes, with the API key, over one keep-alive pool.

export interface Job {
  job_id: string
  status: string
  bytes_total: number
  bytes_downloaded: number
  bytes_transferred: number
  files_total: number
  error: { message: string } | null
  [field: string]: unknown
}

const FINAL = new Set(['complete', 'error', 'cancelled'])
const agent = new Agent({ connections: 8 })

export class ApiClient {
  constructor (readonly baseUrl: string) {}

  /** Answers the parsed body; anything but `expect` throws with the body. */
  async call<T = Record<string, unknown>> (method: 'GET' | 'POST', path: string, expect: number[] = [200]): Promise<T> {
    const response = await request(`${this.baseUrl}${path}`, { method, dispatcher: agent, headers: { authorization: `Bearer ${API_KEY}` } })
    const text = await response.body.text()
    if (!expect.includes(response.statusCode)) throw new Error(`${method} ${path} answered ${response.statusCode}: ${text.slice(0, 500)}`)
    return JSON.parse(text) as T
  }

  async startDownload (modelId: string): Promise<Job> {
    return this.call<Job>('POST', `/api/download-model?model_id=${encodeURIComponent(modelId)}`, [200, 202])
  }

  /** Long-polls as the README says (wait=10) until the job ends; a job that did not complete throws. */
  async waitForEnd (jobId: string): Promise<Job> {
    for (;;) {
      const job = await this.call<Job>('GET', `/api/download-progress?job_id=${jobId}&wait=10`)
      if (!FINAL.has(job.status)) continue
      if (job.status !== 'complete') throw new Error(`job ${jobId} ended ${job.status}: ${job.error?.message ?? ''}`)
      return job
    }
  }

  async job (jobId: string): Promise<Job> {
    return this.call<Job>('GET', `/api/downloads/${jobId}`)
  }
}

/** Milliseconds one call takes, end to end (the body read and parsed). */
export async function timed (call: () => Promise<unknown>): Promise<number> {
  const started = performance.now()
  await call()
  return performance.now() - started
}
