import { createHmac } from 'node:crypto'
import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config.js'
import { CallbackReceiver } from '../fakes/callback-receiver.js'
import { auth } from '../helpers/app.js'
import { hubAndApp, startDownload, waitForEnd } from '../helpers/downloads.js'

// A local receiver stands in for n8n's Wait node ("Resume: On Webhook Call", POST).

const SECRET = 'callback-signing-secret-42'

async function receiverAndApp (t: Test, env: Record<string, string> = {}) {
  const receiver = await CallbackReceiver.start()
  t.teardown(() => receiver.close())
  const built = await hubAndApp(t, { CALLBACK_ALLOWED_HOSTS: '127.0.0.1', CALLBACK_SECRET: SECRET, CALLBACK_RETRY_BASE_MS: '10', ...env })
  return { ...built, receiver }
}

const job = async (app: Awaited<ReturnType<typeof hubAndApp>>['app'], jobId: string): Promise<Record<string, any>> =>
  (await app.inject({ url: `/api/downloads/${jobId}`, headers: auth() })).json()

/** Polls until the job's callback has stopped trying (delivered, or given up). */
async function callbackSettled (app: Awaited<ReturnType<typeof hubAndApp>>['app'], jobId: string, attempts: number): Promise<Record<string, any>> {
  for (let i = 0; i < 400; i++) {
    const current = await job(app, jobId)
    if (current.callback.delivered_at !== null || current.callback.attempts >= attempts) return current
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error('the callback never settled')
}

t.test('a finished download is POSTed once to its callback URL, signed, with the job as GET answers it', async (t) => {
  const { app, receiver, rawLogs } = await receiverAndApp(t)
  const callbackUrl = `${receiver.url}/webhook-waiting/42?signature=resume-token-xyz`
  const started = await startDownload(app, { model_id: 'org/tiny', callback_url: callbackUrl })
  t.equal(started.statusCode, 202)
  t.match(started.job.callback, { url: `${receiver.url}/webhook-waiting/42?signature=****`, attempts: 0, last_status: null, delivered_at: null })
  const ended = await waitForEnd(app, started.job.job_id)
  t.equal(ended.status, 'complete')

  const [callback] = await receiver.waitFor(1)
  t.equal(callback!.path, '/webhook-waiting/42?signature=resume-token-xyz', 'the URL as given, query and all')
  t.equal(callback!.headers['content-type'], 'application/json')
  t.equal(callback!.headers['x-modeldepot-event'], 'complete')
  const expected = `sha256=${createHmac('sha256', SECRET).update(callback!.body).digest('hex')}`
  t.equal(callback!.headers['x-modeldepot-signature'], expected, 'the HMAC of the raw body with CALLBACK_SECRET')
  const body = JSON.parse(callback!.body)
  t.match(body, { job_id: started.job.job_id, model_id: 'org/tiny', status: 'complete', progress: 100, files_done: 4, error: null })
  t.same(Object.keys(body).sort(), Object.keys(await job(app, started.job.job_id)).sort(), 'the same fields as GET /api/downloads/{job_id}')

  const settled = await callbackSettled(app, started.job.job_id, 1)
  t.match(settled.callback, { attempts: 1, last_status: 200, delivered_at: String, error: null })
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(receiver.received.length, 1, 'once, not again')
  const everything = rawLogs() + JSON.stringify(settled) + JSON.stringify((await app.inject({ url: '/api/downloads', headers: auth() })).json())
  t.notOk(everything.includes('resume-token-xyz'), 'the resume token is never shown')
  t.notOk(rawLogs().includes(SECRET), 'nor the signing secret')
})

t.test('without CALLBACK_SECRET there is no signature', async (t) => {
  const receiver = await CallbackReceiver.start()
  t.teardown(() => receiver.close())
  const { app } = await hubAndApp(t, { CALLBACK_ALLOWED_HOSTS: '127.0.0.1' })
  await waitForEnd(app, (await startDownload(app, { model_id: 'org/tiny', callback_url: `${receiver.url}/hook` })).job.job_id)
  const [callback] = await receiver.waitFor(1)
  t.equal(callback!.headers['x-modeldepot-signature'], undefined)
})

t.test('a receiver that fails twice gets the callback on the third attempt', async (t) => {
  const { app, receiver } = await receiverAndApp(t)
  receiver.answer(500, 503)
  const { job: started } = await startDownload(app, { model_id: 'org/tiny', callback_url: `${receiver.url}/hook` })
  await waitForEnd(app, started.job_id)
  const received = await receiver.waitFor(3)
  t.same(received.map((callback) => callback.body), [received[0]!.body, received[0]!.body, received[0]!.body], 'the same body each time')
  const settled = await callbackSettled(app, started.job_id, 3)
  t.match(settled.callback, { attempts: 3, last_status: 200, delivered_at: String, error: null })
})

t.test('each attempt and the answer it got is logged at info, the resume token masked', async (t) => {
  const { app, receiver, logs, rawLogs } = await receiverAndApp(t)
  receiver.answer(503)
  const { job: started } = await startDownload(app, { model_id: 'org/tiny', callback_url: `${receiver.url}/hook?token=resume-secret-123` })
  await waitForEnd(app, started.job_id)
  await callbackSettled(app, started.job_id, 2)
  const attempts = logs().filter((line) => line.component === 'callbacks')
  t.match(attempts, [
    { level: 30, msg: 'callback attempt failed', attempt: 1, status: 503, delivered: false, retry: true, error: 'the receiver answered 503', event: 'complete' },
    { level: 30, msg: 'callback delivered', attempt: 2, status: 200, delivered: true, event: 'complete' }
  ])
  t.equal(attempts.length, 2)
  t.match(attempts[0]!.callback_url, /\/hook\?token=\*+/, 'the URL as the job shows it')
  t.notOk(rawLogs().includes('resume-secret-123'), 'the resume token is in no log line')
})

t.test("n8n's 409 (the workflow has not reached its Wait node yet) is retried too", async (t) => {
  const { app, receiver } = await receiverAndApp(t)
  receiver.answer(409)
  const { job: started } = await startDownload(app, { model_id: 'org/tiny', callback_url: `${receiver.url}/hook` })
  await waitForEnd(app, started.job_id)
  await receiver.waitFor(2)
  t.match((await callbackSettled(app, started.job_id, 2)).callback, { attempts: 2, last_status: 200 })
})

t.test('delivery gives up after CALLBACK_MAX_ATTEMPTS, never follows a redirect, and times out a silent receiver', async (t) => {
  // A deadline a busy machine always meets, but for the receiver that never answers; the test
  // polls the job for those seconds faster than the default rate limit allows.
  const { app, receiver } = await receiverAndApp(t, { CALLBACK_MAX_ATTEMPTS: '3', CALLBACK_TIMEOUT_MS: '1500', RATE_LIMIT_PER_MINUTE: '10000' })
  receiver.answer(502, 502, 502)
  const first = (await startDownload(app, { model_id: 'org/tiny', callback_url: `${receiver.url}/a` })).job.job_id
  await waitForEnd(app, first)
  t.match((await callbackSettled(app, first, 3)).callback, { attempts: 3, last_status: 502, delivered_at: null, error: 'the receiver answered 502' })

  receiver.answer({ status: 302, location: 'http://169.254.169.254/latest/meta-data' })
  const second = (await startDownload(app, { model_id: 'org/tiny', revision: 'v2', callback_url: `${receiver.url}/b` })).job.job_id
  await waitForEnd(app, second)
  t.match((await callbackSettled(app, second, 1)).callback, { attempts: 1, last_status: 302, error: /redirect, not followed/ })

  receiver.answer(404)
  const third = (await startDownload(app, { model_id: 'org/tiny', callback_url: `${receiver.url}/c` })).job.job_id
  t.match((await callbackSettled(app, third, 1)).callback, { attempts: 1, last_status: 404, error: 'the receiver answered 404' }, 'a 404 is not retried')

  receiver.answer({ status: 200, hang: true }, { status: 200, hang: true }, { status: 200, hang: true })
  const fourth = (await startDownload(app, { model_id: 'org/tiny', revision: 'v2', callback_url: `${receiver.url}/d` })).job.job_id
  t.match((await callbackSettled(app, fourth, 3)).callback, { attempts: 3, delivered_at: null, error: 'no answer within 1500 ms' })
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(receiver.received.length, 3 + 1 + 1 + 3, 'no attempt beyond those')
  t.notOk(receiver.received.some((callback) => callback.path.includes('meta-data')))
})

t.test('error and cancelled are final states too', async (t) => {
  const { app, hub, receiver } = await receiverAndApp(t, { DOWNLOAD_RETRIES: '0' })
  hub.injectFault({ kind: 'reset', path: 'model.safetensors', afterBytes: 1000 })
  const failed = (await startDownload(app, { model_id: 'org/tiny', callback_url: `${receiver.url}/failed` })).job.job_id
  t.equal((await waitForEnd(app, failed)).status, 'error')
  const [errorCallback] = await receiver.waitFor(1)
  t.equal(errorCallback!.headers['x-modeldepot-event'], 'error')
  t.match(JSON.parse(errorCallback!.body), { status: 'error', error: { code: 'MD_DOWNLOAD_FAILED' } })

  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 100_000 })
  const slow = (await startDownload(app, { model_id: 'org/tiny', callback_url: `${receiver.url}/cancelled` })).job.job_id
  await app.inject({ method: 'DELETE', url: `/api/downloads/${slow}`, headers: auth() })
  const [, cancelCallback] = await receiver.waitFor(2)
  t.equal(cancelCallback!.headers['x-modeldepot-event'], 'cancelled')
  t.match(JSON.parse(cancelCallback!.body), { job_id: slow, status: 'cancelled' })
})

t.test('the same request with another callback is a job of its own; each caller is told', async (t) => {
  const { app, hub, receiver } = await receiverAndApp(t)
  hub.injectFault({ kind: 'slow', path: 'model.safetensors', bytesPerSecond: 2_000_000 })
  const a = await startDownload(app, { model_id: 'org/tiny', callback_url: `${receiver.url}/a` })
  const again = await startDownload(app, { model_id: 'org/tiny', callback_url: `${receiver.url}/a` })
  const b = await startDownload(app, { model_id: 'org/tiny', callback_url: `${receiver.url}/b` })
  t.equal(again.job.job_id, a.job.job_id, 'the same callback: deduplicated')
  t.not(b.job.job_id, a.job.job_id, 'another callback: another job')
  const endedA = await waitForEnd(app, a.job.job_id)
  t.equal(endedA.status, 'complete', JSON.stringify(endedA.error))
  t.equal((await waitForEnd(app, b.job.job_id)).status, 'complete')
  const received = await receiver.waitFor(2)
  t.same(received.map((callback) => callback.path).sort(), ['/a', '/b'])
  t.equal(hub.bytesServed('model.safetensors'), 3 * 1024 * 1024, 'the weights were fetched once')
})

t.test('a callback_url that is not allowed is refused with 400 before anything starts', async (t) => {
  const { app, hub } = await hubAndApp(t, { CALLBACK_ALLOWED_HOSTS: '127.0.0.1, n8n:5678' })
  const cases: Array<[string, RegExp]> = [
    ['http://localhost:5678/hook', /host localhost:5678 is not in CALLBACK_ALLOWED_HOSTS/],
    ['http://n8n:5679/hook', /host n8n:5679 is not in CALLBACK_ALLOWED_HOSTS/],
    ['ftp://127.0.0.1/hook', /must use http or https, not ftp/],
    ['file:///etc/passwd', /must use http or https, not file/],
    ['http://user:pass@127.0.0.1/hook', /must not carry credentials/],
    ['/relative/hook', /not an absolute URL/]
  ]
  for (const [url, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: { model_id: 'org/tiny', callback_url: url } })
    t.equal(res.statusCode, 400, url)
    t.match(res.json(), { statusCode: 400, code: 'MD_CALLBACK_NOT_ALLOWED', message, hint: /CALLBACK_ALLOWED_HOSTS/ }, url)
  }
  const ok = await app.inject({ method: 'POST', url: '/api/download-model?callback_url=http://n8n:5678/webhook-waiting/7', headers: auth(), payload: { model_id: 'org/tiny', auto: false } })
  t.equal(ok.statusCode, 200, 'an allowed host:port passes (in the query string too)')
  t.same((await app.inject({ url: '/api/downloads', headers: auth() })).json().jobs, [], 'no job was started')
  t.notOk(hub.requests.some((request) => request.url.includes('/resolve/')), 'nothing was downloaded')
})

t.test('without CALLBACK_ALLOWED_HOSTS callbacks are off, and the 400 says how to turn them on', async (t) => {
  const { app } = await hubAndApp(t)
  const res = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: { model_id: 'org/tiny', callback_url: 'http://127.0.0.1:5678/hook' } })
  t.equal(res.statusCode, 400)
  t.match(res.json(), { code: 'MD_CALLBACKS_DISABLED', hint: /Set CALLBACK_ALLOWED_HOSTS/ })
  t.same((await app.inject({ url: '/api/downloads', headers: auth() })).json().jobs, [])
})

t.test('a malformed CALLBACK_ALLOWED_HOSTS stops start-up naming the entry', async (t) => {
  for (const value of ['http://n8n:5678', 'n8n/path', 'user@n8n']) {
    t.throws(() => loadConfig({ API_KEY: 'k'.repeat(20), CALLBACK_ALLOWED_HOSTS: value }), { message: /CALLBACK_ALLOWED_HOSTS is invalid/ }, value)
  }
  t.same(loadConfig({ API_KEY: 'k'.repeat(20), CALLBACK_ALLOWED_HOSTS: 'n8n:5678,[::1]:8080, Hooks.Example.com' }).callbacks.allowedHosts,
    [{ host: 'n8n', port: '5678' }, { host: '[::1]', port: '8080' }, { host: 'hooks.example.com' }])
})
