import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { FakeHub } from '../fakes/fake-hub.js'
import { C1, HF_TOKEN, tinyModel } from '../helpers/downloads.js'
import { KEY } from '../helpers/app.js'
import { startReplicas, type Replica } from '../helpers/replicas.js'
import { listeningPort, startServer } from '../helpers/server-process.js'
import { makeTestCa, type TestCa } from '../helpers/test-ca.js'
import { startTinyproxy } from '../helpers/tinyproxy.js'

// A Hub mirror behind a company's own CA: NODE_EXTRA_CA_CERTS is read by Node when the process
// starts, so each case runs the real server process (dist/src/server.js) with its own environment.

async function httpsHub (t: Test): Promise<{ hub: FakeHub, ca: TestCa }> {
  const dir = mkdtempSync(join(tmpdir(), 'modeldepot-ca-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const ca = await makeTestCa(dir)
  const hub = await FakeHub.start({ tls: ca.server, tokens: { [HF_TOKEN]: { name: 'reader', role: 'read' } } })
  t.teardown(() => hub.close())
  hub.addRepo({ id: 'org/tiny', revisions: { main: { commit: C1, files: tinyModel(256 * 1024).main } } })
  return { hub, ca }
}

async function server (t: Test, env: Record<string, string>): Promise<Replica> {
  const { replicas } = await startReplicas(t, ['server'], { HF_TOKEN, DOWNLOAD_RETRIES: '0', ...env })
  return replicas[0]!
}

async function downloaded (replica: Replica): Promise<Record<string, any>> {
  const started = await replica.call('/api/download-model', { method: 'POST', body: JSON.stringify({ model_id: 'org/tiny' }) })
  if (started.status !== 202) return started.body
  for (let i = 0; i < 10; i++) {
    const { body } = await replica.call(`/api/download-progress?job_id=${started.body.job_id as string}&wait=10`)
    if (['complete', 'error', 'cancelled'].includes(body.status)) return body
  }
  throw new Error('the download did not end')
}

t.test('with NODE_EXTRA_CA_CERTS the Hub over HTTPS is trusted: the token check and a download work', async (t) => {
  const { hub, ca } = await httpsHub(t)
  t.match(hub.url, /^https:\/\/127\.0\.0\.1:\d+$/)
  const replica = await server(t, { HF_ENDPOINT: hub.url, NODE_EXTRA_CA_CERTS: ca.caFile })
  const check = await replica.call('/api/providers/huggingface/check', { method: 'POST' })
  t.match(check.body, { ok: true, account: { name: 'reader' } }, 'the Hub client trusts the company CA')
  t.match(await downloaded(replica), { status: 'complete', progress: 100 }, 'and so do the download engine\'s file requests')
})

t.test('without it, a clear error that names NODE_EXTRA_CA_CERTS, and the server goes on', async (t) => {
  const { hub } = await httpsHub(t)
  const replica = await server(t, { HF_ENDPOINT: hub.url })
  const answer = await replica.call('/api/download-model', { method: 'POST', body: JSON.stringify({ model_id: 'org/tiny' }) })
  t.equal(answer.status, 502)
  t.match(answer.body, { code: 'MD_HUB_UNREACHABLE', message: /its TLS certificate is not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): a private CA's certificate goes in NODE_EXTRA_CA_CERTS/ })
  const check = await replica.call('/api/providers/huggingface/check', { method: 'POST' })
  t.match(check.body, { ok: false, checks: [{ message: /NODE_EXTRA_CA_CERTS/ }] })
  t.equal(hub.requests.length, 0, 'no request got through the TLS handshake')
  t.equal((await replica.call('/health')).status, 200)
})

t.test('through a proxy, the tunnelled TLS still trusts NODE_EXTRA_CA_CERTS', async (t) => {
  const { hub, ca } = await httpsHub(t)
  const proxy = await startTinyproxy(t, { user: 'ca-proxy-user', password: 'ca-proxy-pass-99', connectPorts: [Number(new URL(hub.url).port)] })
  const replica = await server(t, { HF_ENDPOINT: hub.url, NODE_EXTRA_CA_CERTS: ca.caFile, HTTPS_PROXY: proxy.url, LOG_LEVEL: 'trace' })
  t.match(await downloaded(replica), { status: 'complete' })
  t.ok(proxy.tunnels().includes(`127.0.0.1:${new URL(hub.url).port}`), 'the Hub was reached through the proxy')
  t.notOk(replica.server.stdout().includes('ca-proxy-pass-99'), 'the proxy password is not in the log')
})

t.test('NODE_EXTRA_CA_CERTS only in .env comes too late for Node: the server says so at start', async (t) => {
  const { hub, ca } = await httpsHub(t)
  const dir = mkdtempSync(join(tmpdir(), 'modeldepot-dotenv-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, '.env'), `NODE_EXTRA_CA_CERTS=${ca.caFile}\n`)
  const started = startServer(t, { API_KEY: KEY, HF_HUB_CACHE: join(dir, 'hub'), HF_ENDPOINT: hub.url, HF_TOKEN, LOG_LEVEL: 'info' }, dir)
  const port = await listeningPort(started)
  t.match(started.stdout(), /NODE_EXTRA_CA_CERTS in \.env is not used: Node reads it only when it starts/)
  const check = await fetch(`http://127.0.0.1:${port}/api/providers/huggingface/check`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` } })
  t.match(await check.json(), { ok: false, checks: [{ message: /NODE_EXTRA_CA_CERTS/ }] }, 'and indeed the CA is not trusted')
})
