import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { CallbackReceiver } from '../fakes/callback-receiver.js'
import { FakeHub } from '../fakes/fake-hub.js'
import { FakeProvider } from '../fakes/fake-providers.js'
import { auth, buildTestApp, type TestApp } from '../helpers/app.js'
import { C1, C2, HF_TOKEN, startDownload, tinyModel, waitForEnd } from '../helpers/downloads.js'
import { startTinyproxy, type Tinyproxy } from '../helpers/tinyproxy.js'

// A real forward proxy (tinyproxy) that wants a user and password, between the app and the fake
// Hub, a fake OpenAI-compatible provider and an n8n-like callback receiver, all on loopback. Which
// upstream went through it is read from its own log (one CONNECT per tunnel).

const PROXY_USER = 'proxy-user-ada'
const PROXY_PASSWORD = 'pr0xy-pass-w0rd-77'
const OPENAI_TOKEN = 'sk-openai-proxy-test-4242'

interface Upstreams { hub: FakeHub, openai: FakeProvider, receiver: CallbackReceiver, proxy: Tinyproxy }

const portOf = (url: string): number => Number(new URL(url).port)

async function upstreams (t: Test): Promise<Upstreams> {
  const hub = await FakeHub.start({ tokens: { [HF_TOKEN]: { name: 'reader', role: 'read' } } })
  const model = tinyModel(256 * 1024)
  hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: C1, files: model.main }, v2: { commit: C2, files: model.v2 } } })
  const openai = await FakeProvider.start({ kind: 'openai', tokens: [OPENAI_TOKEN], models: [{ id: 'llama-3.1-8b' }] })
  const receiver = await CallbackReceiver.start()
  t.teardown(async () => { await Promise.all([hub.close(), openai.close(), receiver.close()]) })
  const proxy = await startTinyproxy(t, { user: PROXY_USER, password: PROXY_PASSWORD, connectPorts: [hub.url, openai.url, receiver.url].map(portOf) })
  return { hub, openai, receiver, proxy }
}

async function appFor (t: Test, { hub, openai, receiver }: Upstreams, env: Record<string, string>, providerHost = '127.0.0.1', hubHost = '127.0.0.1'): Promise<TestApp> {
  return buildTestApp(t, {
    HF_ENDPOINT: hub.url.replace('127.0.0.1', hubHost),
    HF_TOKEN,
    OPENAI_BASE_URL: openai.url.replace('127.0.0.1', providerHost),
    OPENAI_API_KEY: OPENAI_TOKEN,
    CALLBACK_ALLOWED_HOSTS: `127.0.0.1:${portOf(receiver.url)}`,
    CALLBACK_RETRY_BASE_MS: '10',
    DOWNLOAD_RETRIES: '1',
    DOWNLOAD_RETRY_BASE_MS: '10',
    DOWNLOAD_RETRY_MAX_MS: '50',
    PROVIDER_FAILURES_TO_DOWN: '100',
    RATE_LIMIT_PER_MINUTE: '10000',
    LOG_LEVEL: 'trace',
    ...env
  })
}

/** Every answer a user could read the proxy's settings in. */
async function answers (app: FastifyInstance): Promise<string> {
  const paths = ['/api/info', '/api/system-status', '/api/providers', '/api/providers/huggingface', '/api/providers/openai', '/api/providers/openai/diagnostics', '/api/downloads', '/metrics']
  const bodies = await Promise.all(paths.map(async (url) => (await app.inject({ url, headers: auth() })).body))
  return bodies.join('\n')
}

function assertNoCredentials (t: Test, text: string, where: string): void {
  t.notOk(text.includes(PROXY_PASSWORD), `the proxy password is not in ${where}`)
  t.notOk(text.includes(PROXY_USER), 'nor the proxy user')
  t.notOk(text.includes(Buffer.from(`${PROXY_USER}:${PROXY_PASSWORD}`).toString('base64')), 'nor the Proxy-Authorization value')
}

t.test('through HTTP_PROXY: a download (Hub API and file bytes), a provider check and the callback all pass the proxy', async (t) => {
  const up = await upstreams(t)
  const { app, rawLogs } = await appFor(t, up, { HTTP_PROXY: up.proxy.url })

  const started = await startDownload(app, { model_id: 'org/tiny', callback_url: `${up.receiver.url}/webhook-waiting/7?signature=resume-secret` })
  t.equal(started.statusCode, 202)
  const ended = await waitForEnd(app, started.job.job_id)
  t.equal(ended.status, 'complete', 'the download completes through the proxy')
  await up.receiver.waitFor(1)
  const check = (await app.inject({ method: 'POST', url: '/api/providers/openai/check', headers: auth() })).json()
  t.equal(check.ok, true, 'the provider check passes through the proxy')

  const tunnels = up.proxy.tunnels()
  t.ok(tunnels.includes(`127.0.0.1:${portOf(up.hub.url)}`), 'the Hub was reached through the proxy')
  t.ok(tunnels.includes(`127.0.0.1:${portOf(up.openai.url)}`), 'the provider too')
  t.ok(tunnels.includes(`127.0.0.1:${portOf(up.receiver.url)}`), 'and the callback receiver')
  t.ok(up.hub.requests.some((request) => request.status === 200 && request.bodyBytes === 256 * 1024), 'the weights came that way')

  const info = (await app.inject({ url: '/api/info', headers: auth() })).json()
  t.same(info.settings.proxy, { https_proxy: null, http_proxy: `http://****:****@127.0.0.1:${up.proxy.port}`, no_proxy: null }, '/api/info shows the proxy, credentials masked')
  assertNoCredentials(t, await answers(app), 'any answer')
  assertNoCredentials(t, rawLogs(), 'the trace-level log')
})

t.test('NO_PROXY: a listed host is reached directly, the others through the proxy; the lower-case forms win', async (t) => {
  const up = await upstreams(t)
  // The upper-case forms point at nothing: were they used, nothing would arrive.
  const { app } = await appFor(t, up, {
    HTTP_PROXY: 'http://127.0.0.1:9',
    http_proxy: up.proxy.url,
    NO_PROXY: 'localhost',
    no_proxy: '127.0.0.1'
  }, 'localhost')

  const started = await startDownload(app, { model_id: 'org/tiny' })
  t.equal((await waitForEnd(app, started.job.job_id)).status, 'complete', 'the Hub on 127.0.0.1 (in no_proxy) is reached directly')
  const check = (await app.inject({ method: 'POST', url: '/api/providers/openai/check', headers: auth() })).json()
  t.equal(check.ok, true, 'the provider at localhost answers')

  const tunnels = up.proxy.tunnels()
  t.same(tunnels.filter((tunnel) => tunnel.endsWith(`:${portOf(up.hub.url)}`)), [], 'no tunnel to the Hub')
  t.ok(tunnels.includes(`localhost:${portOf(up.openai.url)}`), 'the provider at localhost (not in no_proxy) went through the proxy')
  t.match((await app.inject({ url: '/api/info', headers: auth() })).json().settings.proxy, { http_proxy: `http://****:****@127.0.0.1:${up.proxy.port}`, no_proxy: '127.0.0.1' })
})

t.test('the download engine\'s own file requests go through the proxy: the Hub on localhost (in NO_PROXY) sends the weights to its CDN on 127.0.0.1', async (t) => {
  const up = await upstreams(t)
  const { app } = await appFor(t, up, { HTTPS_PROXY: up.proxy.url, HTTP_PROXY: up.proxy.url, NO_PROXY: 'localhost' }, '127.0.0.1', 'localhost')
  const started = await startDownload(app, { model_id: 'org/tiny' })
  t.equal((await waitForEnd(app, started.job.job_id)).status, 'complete')
  const hubPort = portOf(up.hub.url)
  t.ok(up.hub.requests.some((request) => request.path.startsWith('/cdn/') && request.status === 200), 'the weights came from the CDN address')
  t.same(up.proxy.tunnels().filter((tunnel) => tunnel === `localhost:${hubPort}`), [], 'the Hub API, on localhost, went direct')
  t.ok(up.proxy.tunnels().includes(`127.0.0.1:${hubPort}`), 'the CDN request (undici, not fetch) went through the proxy')
})

t.test('a wrong proxy password: clear error answers that name the proxy, the server goes on, the credentials shown nowhere', async (t) => {
  const up = await upstreams(t)
  const wrong = 'wrong-pass-0000'
  const { app, rawLogs } = await appFor(t, up, { HTTP_PROXY: up.proxy.urlWithPassword(wrong) })

  const download = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: { model_id: 'org/tiny' } })
  t.equal(download.statusCode, 502)
  t.match(download.json(), { code: 'MD_HUB_UNREACHABLE', message: /the proxy refused the connection with 40[17]: check the user and password in HTTPS_PROXY \/ HTTP_PROXY/, hint: /HTTP_PROXY/ })

  const check = (await app.inject({ method: 'POST', url: '/api/providers/openai/check', headers: auth() })).json()
  t.equal(check.ok, false, 'the provider check fails')
  t.match(JSON.stringify(check), /the proxy refused the connection/, 'and says why')

  t.equal(up.hub.requests.length, 0, 'nothing reached the Hub')
  t.ok(up.proxy.tunnels().length > 0, 'the proxy was asked')
  t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'the server still answers')
  const everything = download.body + JSON.stringify(check) + await answers(app) + rawLogs()
  for (const secret of [wrong, PROXY_USER, Buffer.from(`${PROXY_USER}:${wrong}`).toString('base64')]) {
    t.notOk(everything.includes(secret), 'neither the wrong password nor the user is in an answer or the trace log')
  }
})

t.test('a proxy setting that is not a URL stops the start with a message that does not repeat it', async (t) => {
  await t.rejects(buildTestApp(t, { HTTPS_PROXY: 'proxy-user:hunter2-secret@' }), { message: /^HTTPS_PROXY is invalid: expected the proxy's http\(s\) URL, e.g. http:\/\/user:password@proxy.example:3128$/ })
  await t.rejects(buildTestApp(t, { https_proxy: 'socks5://u:hunter2-secret@127.0.0.1:1080' }), { message: /^HTTPS_PROXY is invalid/ })
})
