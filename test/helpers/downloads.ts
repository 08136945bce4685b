import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { FakeHub, type FakeFile } from '../fakes/fake-hub.js'
import { auth, buildTestApp, type TestApp } from './app.js'

export const C1 = '1'.repeat(40)
export const C2 = '2'.repeat(40)
export const HF_TOKEN = 'hf_test_reader_token'

/** A small model as the Hub holds it: config files, a nested file, and LFS weights shared by two revisions. */
export function tinyModel (weightsBytes = 3 * 1024 * 1024): { main: FakeFile[], v2: FakeFile[], weights: Buffer } {
  const weights = randomBytes(weightsBytes)
  const main: FakeFile[] = [
    { path: 'config.json', content: '{"model_type":"llama","hidden_size":64}' },
    { path: 'tokenizer.json', content: JSON.stringify({ vocab: Array.from({ length: 200 }, (_, i) => `tok${i}`) }) },
    { path: 'original/params.json', content: '{"dim":64}' },
    { path: 'model.safetensors', content: weights, lfs: true }
  ]
  const v2: FakeFile[] = [
    { path: 'config.json', content: '{"model_type":"llama","hidden_size":64,"v":2}' },
    { path: 'model.safetensors', content: weights, lfs: true }
  ]
  return { main, v2, weights }
}

export interface HubAndApp extends TestApp {
  hub: FakeHub
  cacheDir: string
  model: ReturnType<typeof tinyModel>
}

/**
 * A fake Hub with `org/tiny` (main = C1, v2 = C2), and the app pointed at it through HF_ENDPOINT as a
 * user would. `host: 'localhost'` makes the Hub's CDN (absolute URLs on 127.0.0.1) another host.
 */
export async function hubAndApp (t: Test, env: Record<string, string> = {}, weightsBytes?: number, host?: 'localhost'): Promise<HubAndApp> {
  const hub = await FakeHub.start({ tokens: { [HF_TOKEN]: { name: 'reader', role: 'read' } } })
  t.teardown(() => hub.close())
  const model = tinyModel(weightsBytes)
  hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: C1, files: model.main }, v2: { commit: C2, files: model.v2 } } })
  const built = await buildTestApp(t, {
    HF_ENDPOINT: host === undefined ? hub.url : hub.url.replace('127.0.0.1', host),
    HF_TOKEN,
    DOWNLOAD_RETRY_BASE_MS: '10',
    DOWNLOAD_RETRY_MAX_MS: '50',
    DOWNLOAD_READ_TIMEOUT_MS: '1000',
    ...env
  })
  return { ...built, hub, cacheDir: built.app.config.hubCacheDir, model }
}

export async function startDownload (
  app: FastifyInstance,
  payload: Record<string, unknown>
): Promise<{ statusCode: number, job: Record<string, any>, location: string | undefined }> {
  const res = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload })
  return { statusCode: res.statusCode, job: res.json(), location: res.headers.location as string | undefined }
}

/** Long-polls the job until it ends, as an n8n loop would with ?wait=. */
export async function waitForEnd (app: FastifyInstance, jobId: string): Promise<Record<string, any>> {
  for (let i = 0; i < 10; i++) {
    const job = (await app.inject({ url: `/api/download-progress?job_id=${jobId}&wait=10`, headers: auth() })).json()
    if (['complete', 'error', 'cancelled'].includes(job.status)) return job
  }
  throw new Error(`job ${jobId} did not end`)
}

/** Polls until the job has moved at least `bytes`, for tests that act mid-download. */
export async function waitForBytes (app: FastifyInstance, jobId: string, bytes: number): Promise<Record<string, any>> {
  for (let i = 0; i < 500; i++) {
    const job = (await app.inject({ url: `/api/downloads/${jobId}`, headers: auth() })).json()
    if (job.bytes_transferred >= bytes) return job
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`job ${jobId} never moved ${bytes} bytes`)
}

/** Polls the job until `reached` holds (a state, never a duration), for tests that act at one point of a download. */
export async function waitForJob (
  app: FastifyInstance,
  jobId: string,
  reached: (job: Record<string, any>) => boolean,
  what: string
): Promise<Record<string, any>> {
  for (let i = 0; i < 1500; i++) {
    const job = (await app.inject({ url: `/api/downloads/${jobId}`, headers: auth() })).json()
    if (reached(job)) return job
    if (['complete', 'error', 'cancelled'].includes(job.status)) throw new Error(`job ${jobId} ended (${job.status as string}) before ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`job ${jobId} never reached ${what}`)
}

/**
 * File bytes the Hub sent for `filePath` in answers to the requests made since `mark` (an index into
 * hub.requests): what a resume fetched, untouched by bytes of an aborted earlier request still being counted.
 */
export function servedSince (hub: FakeHub, mark: number, filePath: string): number {
  return hub.requests.slice(mark).filter((request) => {
    const url = new URL(request.url, hub.url)
    const forFile = url.searchParams.get('path') === filePath || (url.pathname.includes('/resolve/') && url.pathname.endsWith(`/${filePath}`))
    return forFile && (request.status === 200 || request.status === 206)
  }).reduce((sum, request) => sum + request.bodyBytes, 0)
}

export const incompleteFiles = (cacheDir: string, modelId: string): string[] => {
  const blobs = join(cacheDir, `models--${modelId.replace('/', '--')}`, 'blobs')
  return existsSync(blobs) ? readdirSync(blobs).filter((name) => name.endsWith('.incomplete')) : []
}
