import t from 'tap'
import { auth } from '../helpers/app.js'
import { hubAndApp, startDownload, waitForEnd } from '../helpers/downloads.js'

// The download engine's file requests to the Hub go through the huggingface provider, like every
// metadata call: its errors count in the provider's health, and its cooldowns hold the engine back.

const configRequests = (hub: { requests: Array<{ url: string, status: number, at: number }> }) =>
  hub.requests.filter((request) => request.url.includes('/resolve/') && request.url.endsWith('/config.json'))

t.test('5xx from the Hub on file requests mark the provider down; the download waits out the cooldown, then one probe goes', async (t) => {
  const { app, hub } = await hubAndApp(t, { PROVIDER_FAILURES_TO_DOWN: '3', PROVIDER_DOWN_COOLDOWN_MS: '1500' })
  hub.injectFault({ kind: 'status', status: 500, path: 'config.json', times: 3 })
  const job = await waitForEnd(app, (await startDownload(app, { model_id: 'org/tiny', allow_patterns: 'config.json' })).job.job_id)
  t.equal(job.status, 'complete')

  const requests = configRequests(hub)
  t.same(requests.map((request) => request.status), [500, 500, 500, 200], 'three failures, then the probe succeeds')
  const [third, probe] = [requests[2]!, requests[3]!]
  // A lower bound: without the gate the retry would follow within the 10–50 ms retry backoff.
  t.ok(probe.at - third.at >= 1400, `nothing was sent while the provider was down (${probe.at - third.at} ms between)`)

  const diagnostics = (await app.inject({ url: '/api/providers/huggingface/diagnostics', headers: auth() })).json()
  t.match(diagnostics.recent_errors.map((error: { status: number, action: string }) => [error.status, error.action]), [[500, 'marked_down'], [500, 'recorded'], [500, 'recorded']])
  t.match(diagnostics.provider.health, { status: 'online', consecutive_failures: 0 }, 'the successful probe brought it back')
})

t.test('a 429 on a file request backs the provider off for every caller until its Retry-After', async (t) => {
  const { app, hub } = await hubAndApp(t)
  hub.injectFault({ kind: 'status', status: 429, retryAfter: 4, path: 'config.json' })
  const { job } = await startDownload(app, { model_id: 'org/tiny', allow_patterns: 'config.json' })
  const healthNow = async (): Promise<Record<string, any>> => (await app.inject({ url: '/api/providers/huggingface', headers: auth() })).json().health
  let health = await healthNow()
  for (let i = 0; i < 200 && health.last_error?.status !== 429; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    health = await healthNow()
  }
  t.match(health, { status: 'rate_limited', consecutive_429s: 1, last_error: { status: 429 } })
  t.ok(health.cooldown_until !== null)
  const planned = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: { model_id: 'org/tiny', revision: 'v2', auto: false } })
  t.equal(planned.statusCode, 503, 'another call to the Hub fails fast meanwhile')
  t.match(planned.json(), { code: 'MD_PROVIDER_UNAVAILABLE', details: { provider: 'huggingface', status: 'rate_limited' } })

  const ended = await waitForEnd(app, job.job_id)
  t.equal(ended.status, 'complete', 'the download went on once the Hub allowed it')
  const [limited, retried] = configRequests(hub)
  t.ok(retried!.at - limited!.at >= 3900, 'the retry waited for the Retry-After')
  t.match((await app.inject({ url: '/api/providers/huggingface', headers: auth() })).json().health, { status: /^(online|degraded)$/, consecutive_429s: 0, cooldown_until: null }, 'taking calls again')
})

t.test('CDN answers are not the Hub: a 503 from the CDN leaves the provider alone', async (t) => {
  // The CDN on another host, as cdn-lfs.hf.co is.
  const { app, hub } = await hubAndApp(t, {}, undefined, 'localhost')
  hub.injectFault({ kind: 'status', status: 503, path: 'model.safetensors', times: 2 })
  const job = await waitForEnd(app, (await startDownload(app, { model_id: 'org/tiny' })).job.job_id)
  t.equal(job.status, 'complete')
  t.ok(hub.requests.filter((request) => request.url.includes('/cdn/') && request.status === 503).length === 2, 'the CDN failed twice')
  const health = (await app.inject({ url: '/api/providers/huggingface', headers: auth() })).json().health
  t.match(health, { status: 'online', failures: 0 })
})
