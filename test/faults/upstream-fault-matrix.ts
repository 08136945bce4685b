import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import type { FakeHub } from '../fakes/fake-hub.js'
import { auth } from '../helpers/app.js'
import { cacheLeftovers, wrongBlobs } from '../helpers/cache-checks.js'
import { C1, hubAndApp, startDownload, waitForEnd } from '../helpers/downloads.js'

// Every fault the Hub can throw, in one phase of a download: the model's metadata, its file
// listing, or the file bytes (a test file per phase, so they run side by side). Each ends in a
// completed download or a clear error; never a hang, never a corrupt blob, and once the fault is
// gone the same request completes.

export type Phase = 'metadata' | 'listing' | 'bytes'
type FaultName = 'reset' | '503' | '429 with Retry-After' | '429 without Retry-After' | 'corrupted byte' | 'slow' | 'stall' | 'redirect to a dead address'

export const API_PATHS: Record<Exclude<Phase, 'bytes'>, string> = {
  metadata: '/api/models/org/tiny/revision',
  listing: '/api/models/org/tiny/tree'
}

/** An address where nothing listens: a port bound, then released. */
async function deadAddress (): Promise<string> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return `http://127.0.0.1:${port}/gone`
}

async function inject (hub: FakeHub, phase: Phase, fault: FaultName, times: number): Promise<void> {
  const dead = fault === 'redirect to a dead address' ? await deadAddress() : ''
  if (phase === 'bytes') {
    const byKind = {
      reset: { kind: 'reset' },
      503: { kind: 'status', status: 503 },
      '429 with Retry-After': { kind: 'status', status: 429, retryAfter: 1 },
      '429 without Retry-After': { kind: 'status', status: 429 },
      'corrupted byte': { kind: 'corrupt' },
      slow: { kind: 'slow', bytesPerSecond: 4 * 1024 * 1024 },
      stall: { kind: 'stall' },
      'redirect to a dead address': { kind: 'redirect', location: dead }
    } as const
    hub.injectFault({ ...byKind[fault], times })
    return
  }
  const path = API_PATHS[phase]
  const repeat = <T>(step: T): T[] => Array.from({ length: times }, () => step)
  switch (fault) {
    case 'reset': return hub.injectApiFault(path, { kind: 'reset', times })
    // In the metadata, the commit itself; in the listing, wherever half the body falls.
    case 'corrupted byte': return hub.injectApiFault(path, { kind: 'corrupt', times, ...(phase === 'metadata' && { atText: C1 }) })
    // Slow, yet well within PROVIDER_TIMEOUT_MS even on a busy machine.
    case 'slow': return hub.injectApiFault(path, { kind: 'slow', bytesPerSecond: 20_000, times })
    case 'stall': return hub.injectApiFault(path, { kind: 'stall', times })
    case '503': return hub.scriptApi(path, repeat(503))
    case '429 with Retry-After': return hub.scriptApi(path, repeat({ status: 429, retryAfter: 1 }))
    case '429 without Retry-After': return hub.scriptApi(path, repeat(429))
    case 'redirect to a dead address': return hub.scriptApi(path, repeat({ status: 302, location: dead }))
  }
}

const FAULTS: FaultName[] = ['reset', '503', '429 with Retry-After', '429 without Retry-After', 'corrupted byte', 'slow', 'stall', 'redirect to a dead address']
// Short deadlines and backoffs, so each fault plays out in a second or two.
export const ENV = {
  DOWNLOAD_READ_TIMEOUT_MS: '300',
  PROVIDER_TIMEOUT_MS: '1000',
  DOWNLOAD_RETRIES: '2',
  PROVIDER_RATE_LIMIT_BACKOFF_MS: '300,600',
  PROVIDER_DOWN_COOLDOWN_MS: '300',
  PROVIDER_BLACKLIST_MS: '600'
}

// What the error says when a fault outlasts the retries.
const BYTES_CAUSE: Record<FaultName, RegExp> = {
  reset: /broke off|ended early/,
  503: /answered 503|the Hub is down/,
  '429 with Retry-After': /answered 429|rate_limited|blacklisted/,
  '429 without Retry-After': /answered 429|rate_limited|blacklisted/,
  'corrupted byte': /checksum mismatch/,
  slow: /./,
  stall: /UND_ERR_BODY_TIMEOUT|UND_ERR_HEADERS_TIMEOUT/,
  'redirect to a dead address': /ECONNREFUSED/
}
const API_ANSWER: Record<FaultName, { status: number, code: string, message: RegExp }> = {
  reset: { status: 502, code: 'MD_HUB_UNREACHABLE', message: /could not be reached \(UND_ERR_SOCKET\)/ },
  503: { status: 502, code: 'MD_HUB_ERROR', message: /answered 503/ },
  '429 with Retry-After': { status: 502, code: 'MD_HUB_ERROR', message: /answered 429/ },
  '429 without Retry-After': { status: 502, code: 'MD_HUB_ERROR', message: /answered 429/ },
  'corrupted byte': { status: 502, code: 'MD_HUB_ERROR', message: /answered without a commit|does not parse/ },
  slow: { status: 202, code: '', message: /./ },
  stall: { status: 502, code: 'MD_HUB_UNREACHABLE', message: /no complete answer within PROVIDER_TIMEOUT_MS/ },
  'redirect to a dead address': { status: 502, code: 'MD_HUB_UNREACHABLE', message: /ECONNREFUSED/ }
}

/** The same request again, as a client that honours Retry-After would send it, until it is taken. */
async function retryUntilTaken (app: FastifyInstance): Promise<Record<string, any>> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const res = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: { model_id: 'org/tiny' } })
    if (res.statusCode < 300) return res.json()
    await new Promise((resolve) => setTimeout(resolve, Number(res.headers['retry-after'] ?? 0.2) * 1000))
  }
  throw new Error('the request was never taken')
}

/** One subtest per fault, once and every time, in `phase`. */
export function testFaultsIn (t: Test, phase: Phase): void {
  for (const fault of FAULTS) {
    for (const times of [1, 50]) {
      t.test(`${phase}: ${fault}, ${times === 1 ? 'once' : 'every time'}`, { timeout: 60_000 }, async (t) => {
        const { app, hub, cacheDir, model } = await hubAndApp(t, ENV)
        await inject(hub, phase, fault, times)
        const { statusCode, job } = await startDownload(app, { model_id: 'org/tiny' })

        if (phase !== 'bytes') {
          const expected = API_ANSWER[fault]
          if (expected.status === 202) {
            t.equal(statusCode, 202, 'a slow answer is only slow')
          } else {
            t.match({ statusCode, ...job }, { statusCode: expected.status, code: expected.code, message: expected.message, hint: /again/ }, 'the request is refused with a clear error')
            t.notOk(existsSync(join(cacheDir, 'models--org--tiny')), 'and nothing is written')
          }
        } else {
          t.equal(statusCode, 202)
          const ended = await waitForEnd(app, job.job_id)
          if (times === 1 || fault === 'slow') {
            t.equal(ended.status, 'complete', 'a passing fault is retried through')
          } else {
            t.equal(ended.status, 'error', 'a fault that lasts ends the job')
            t.match(ended.error, { code: 'MD_DOWNLOAD_FAILED', message: BYTES_CAUSE[fault], hint: /same request again/ })
          }
        }
        t.same(wrongBlobs(cacheDir), [], 'no blob holds wrong bytes')

        // The network recovers: the same request completes, and leaves nothing behind.
        hub.clearFaults()
        const again = await retryUntilTaken(app)
        t.equal((await waitForEnd(app, again.job_id)).status, 'complete')
        for (const file of model.main) {
          t.same(readFileSync(join(cacheDir, 'models--org--tiny', 'snapshots', C1, file.path)), Buffer.from(file.content), `${file.path} is right`)
        }
        t.same(wrongBlobs(cacheDir), [])
        t.same(cacheLeftovers(cacheDir), [], 'no partial, temporary, lock or dangling link is left')
      })
    }
  }
}
