import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type InjectOptions } from 'fastify'
import t, { type Test } from 'tap'
import authPlugin, { declaredScope } from '../../plugins/auth.js'
import errorsPlugin from '../../plugins/errors.js'
import { loadConfig } from '../../src/config.js'
import { auth, buildTestApp, KEY } from '../helpers/app.js'
import { hubAndApp, waitForEnd } from '../helpers/downloads.js'

const READER_KEY = 'reader-key-0123456789abcdef'
const DOWNLOADER_KEY = 'downloader-key-0123456789abcdef'
const OPS_KEY = 'ops-key-0123456789abcdef'
const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex')

/** A keys file with one key per scope; the download key in its key_sha256 form. Removed after the test. */
export function writeKeysFile (t: Test, entries: unknown = [
  { name: 'n8n-reader', key: READER_KEY, scopes: ['read'] },
  { name: 'fetcher', key_sha256: sha256(DOWNLOADER_KEY), scopes: ['download'] },
  { name: 'ops', key: OPS_KEY, scopes: ['read', 'admin'] }
]): string {
  const dir = mkdtempSync(join(tmpdir(), 'modeldepot-keys-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'keys.json')
  writeFileSync(path, typeof entries === 'string' ? entries : JSON.stringify(entries))
  return path
}

const forbidden = (required: string, name: string, scope: string) => ({
  statusCode: 403,
  error: 'Forbidden',
  code: 'MD_FORBIDDEN',
  message: `The API key "${name}" has the ${scope} scope; this needs ${required}`,
  hint: String,
  details: { required_scope: required, key_name: name, key_scope: scope }
})

const call = async (app: FastifyInstance, key: string, options: InjectOptions) =>
  app.inject({ ...options, headers: { ...auth(key), ...options.headers } })

// What only a download key may do, and what only an admin may do.
const DOWNLOAD_CALLS: InjectOptions[] = [
  { method: 'POST', url: '/api/download-model', payload: { model_id: 'org/tiny' } },
  { method: 'POST', url: '/api/download-model?model_id=org/tiny' },
  { method: 'DELETE', url: '/api/downloads/no-such-job' },
  { method: 'PATCH', url: '/api/downloads/no-such-job', payload: { max_bytes_per_s: 0 } },
  { method: 'POST', url: '/api/downloads/no-such-job/pause' },
  { method: 'POST', url: '/api/downloads/no-such-job/resume' },
  { method: 'POST', url: '/api/models/verify', payload: { model_id: 'org/tiny' } },
  { method: 'POST', url: '/api/providers/huggingface/check' }
]
const ADMIN_CALLS: InjectOptions[] = [
  { method: 'DELETE', url: '/api/delete-model?model_id=org/tiny' },
  { method: 'PUT', url: '/api/default-model', payload: { model_id: 'org/tiny' } },
  { method: 'PUT', url: '/api/providers/nope/token', payload: { token: 'tok-123456' } },
  { method: 'POST', url: '/api/providers/nope/models/block', payload: { model_id: 'org/tiny' } },
  { method: 'DELETE', url: '/api/providers/nope/models/block?model_id=org/tiny' },
  { method: 'PATCH', url: '/api/limits', payload: { max_bytes_per_s: 1048576 } },
  { method: 'PUT', url: '/api/models/pin', payload: { model_id: 'org/tiny' } },
  { method: 'DELETE', url: '/api/models/pin?model_id=org/tiny' },
  { method: 'POST', url: '/api/cache/prune', payload: { dry_run: false } }
]

t.test('a read key reads, and is refused 403 MD_FORBIDDEN with details.required_scope for the rest', async (t) => {
  const { app } = await hubAndApp(t, { API_KEYS_FILE: writeKeysFile(t) })
  for (const url of ['/api/info', '/api/models', '/api/downloads', '/api/default-model', '/api/providers', '/api/system-status']) {
    t.equal((await call(app, READER_KEY, { url })).statusCode, 200, `GET ${url}`)
  }
  const plan = await call(app, READER_KEY, { method: 'POST', url: '/api/download-model', payload: { model_id: 'org/tiny', auto: false } })
  t.equal(plan.statusCode, 200, 'an auto=false plan only reads')
  t.match(plan.json(), { model_id: 'org/tiny', file_count: 4 })
  t.equal((await call(app, READER_KEY, { method: 'POST', url: '/api/download-model?model_id=org/tiny&auto=false' })).statusCode, 200, 'auto=false in the query string too')
  t.equal((await call(app, READER_KEY, { method: 'HEAD', url: '/api/info' })).statusCode, 200, 'a HEAD reads like its GET')
  const validated = await call(app, READER_KEY, { method: 'POST', url: '/api/providers/nope/models/validate', payload: { model_id: 'org/tiny' } })
  t.equal(validated.statusCode, 404, 'model validation only reads (the provider is unknown)')

  for (const options of DOWNLOAD_CALLS) {
    const res = await call(app, READER_KEY, options)
    t.equal(res.statusCode, 403, `${options.method} ${options.url}`)
    t.match(res.json(), forbidden('download', 'n8n-reader', 'read'))
  }
  for (const options of ADMIN_CALLS) {
    const res = await call(app, READER_KEY, options)
    t.equal(res.statusCode, 403, `${options.method} ${options.url}`)
    t.match(res.json(), forbidden('admin', 'n8n-reader', 'read'))
  }
  t.equal((await call(app, READER_KEY, { url: '/api/downloads' })).json().jobs.length, 0, 'nothing was started')
  t.equal((await call(app, READER_KEY, { url: '/api/default-model' })).json().model_id, null, 'nothing was changed')
  t.equal((await call(app, READER_KEY, { url: '/api/no-such-route' })).statusCode, 404, 'an unknown route is a 404 to any valid key')
})

t.test('a download key (key_sha256) starts and cancels downloads, and cannot delete or administer', async (t) => {
  const { app } = await hubAndApp(t, { API_KEYS_FILE: writeKeysFile(t) })
  const started = await call(app, DOWNLOADER_KEY, { method: 'POST', url: '/api/download-model', payload: { model_id: 'org/tiny' } })
  t.equal(started.statusCode, 202, 'started')
  t.equal((await call(app, DOWNLOADER_KEY, { url: '/api/downloads' })).statusCode, 200, 'download includes read')
  const cancelled = await call(app, DOWNLOADER_KEY, { method: 'DELETE', url: `/api/downloads/${started.json().job_id as string}` })
  t.equal(cancelled.statusCode, 200, 'cancelled')
  t.equal((await call(app, DOWNLOADER_KEY, { method: 'DELETE', url: '/api/downloads/no-such-job' })).statusCode, 404, 'past the scope check')

  for (const options of ADMIN_CALLS) {
    const res = await call(app, DOWNLOADER_KEY, options)
    t.equal(res.statusCode, 403, `${options.method} ${options.url}`)
    t.match(res.json(), forbidden('admin', 'fetcher', 'download'))
  }
})

t.test('an admin key does everything', async (t) => {
  const { app } = await hubAndApp(t, { API_KEYS_FILE: writeKeysFile(t) })
  const started = await call(app, OPS_KEY, { method: 'POST', url: '/api/download-model', payload: { model_id: 'org/tiny' } })
  t.equal(started.statusCode, 202)
  t.match(await waitForEnd(app, started.json().job_id), { status: 'complete' })
  t.equal((await call(app, OPS_KEY, { method: 'PUT', url: '/api/default-model', payload: { model_id: 'org/other' } })).statusCode, 200)
  const deleted = await call(app, OPS_KEY, { method: 'DELETE', url: '/api/delete-model?model_id=org/tiny' })
  t.equal(deleted.statusCode, 200)
  t.ok(deleted.json().freed_bytes > 0)
  // Answered by the route (an unknown provider's 404, a model not cached, a limit set), so the key got through.
  for (const options of ADMIN_CALLS.slice(2)) {
    const status = (await call(app, OPS_KEY, options)).statusCode
    t.ok(status !== 401 && status !== 403, `${options.method} ${options.url}: ${status}`)
  }
})

t.test('API_KEY alone works as before: an admin key named api_key', async (t) => {
  const { app, logs } = await buildTestApp(t)
  t.equal((await call(app, KEY, { method: 'PUT', url: '/api/default-model', payload: { model_id: 'org/tiny' } })).statusCode, 200)
  t.equal((await call(app, KEY, { method: 'DELETE', url: '/api/delete-model?model_id=org/tiny' })).statusCode, 404, 'not cached, but allowed')
  const completed = logs().filter((line) => line.msg === 'request completed')
  t.ok(completed.length >= 2)
  t.ok(completed.every((line) => line.key_name === 'api_key'), 'the access log names the key api_key')
})

t.test('with API_KEYS_FILE, API_KEY is optional; with both, both are accepted', async (t) => {
  const path = writeKeysFile(t)
  const { app: fileOnly } = await buildTestApp(t, { API_KEY: '', API_KEYS_FILE: path })
  t.equal((await call(fileOnly, READER_KEY, { url: '/api/info' })).statusCode, 200)
  t.equal((await call(fileOnly, KEY, { url: '/api/info' })).statusCode, 401, 'no API_KEY, so the test key is no key')

  const { app: both } = await buildTestApp(t, { API_KEYS_FILE: path })
  t.equal((await call(both, READER_KEY, { url: '/api/info' })).statusCode, 200)
  t.equal((await call(both, KEY, { method: 'PUT', url: '/api/default-model', payload: { model_id: null } })).statusCode, 200, 'API_KEY stays admin')
})

t.test('the access log names the key, and never shows it', async (t) => {
  const { app, logs, rawLogs } = await buildTestApp(t, { API_KEY: '', API_KEYS_FILE: writeKeysFile(t) })
  const read = await call(app, READER_KEY, { url: '/api/info' })
  const refused = await call(app, READER_KEY, { method: 'DELETE', url: '/api/delete-model?model_id=org/tiny' })
  const completed = (id: unknown) => logs().find((line) => line.msg === 'request completed' && line.reqId === id)
  t.match(completed(read.headers['x-request-id']), { key_name: 'n8n-reader', res: { statusCode: 200 } })
  t.match(completed(refused.headers['x-request-id']), { key_name: 'n8n-reader', res: { statusCode: 403 } })
  t.match(logs().find((line) => line.msg === 'request rejected: the key lacks the scope'), { level: 40, key_name: 'n8n-reader', required_scope: 'admin' })
  t.notOk(rawLogs().includes(READER_KEY), 'the key itself is never logged')
})

t.test('/metrics and /docs keep their *_PUBLIC settings and otherwise need read', async (t) => {
  const path = writeKeysFile(t)
  const { app: closed } = await buildTestApp(t, { API_KEY: '', API_KEYS_FILE: path, DOCS_PUBLIC: 'false', METRICS_PUBLIC: 'false' })
  for (const url of ['/metrics', '/docs/json', '/docs']) {
    t.equal((await closed.inject({ url })).statusCode, 401, `${url} without a key`)
    t.equal((await call(closed, READER_KEY, { url })).statusCode, 200, `${url} with a read key`)
  }
  t.equal((await closed.inject({ url: '/health' })).statusCode, 200, 'health stays open')
  const { app: open } = await buildTestApp(t, { API_KEY: '', API_KEYS_FILE: path, METRICS_PUBLIC: 'true' })
  for (const url of ['/metrics', '/docs/json']) t.equal((await open.inject({ url })).statusCode, 200, `${url} is public`)
})

t.test('every route declares its scope, and the OpenAPI document shows it', async (t) => {
  const { app } = await buildTestApp(t, { METRICS_PUBLIC: 'false' })
  await app.ready()
  const document = app.swagger() as unknown as { paths: Record<string, Record<string, { security?: unknown[], description?: string, 'x-required-scope'?: string, responses: Record<string, unknown> }>> }
  const found: Record<string, string> = {}
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const name = `${method.toUpperCase()} ${path}`
      if (path.startsWith('/health')) {
        t.same(operation.security, [], `${name} is open`)
        continue
      }
      const scope = operation['x-required-scope']
      t.ok(scope === 'read' || scope === 'download' || scope === 'admin', `${name} declares its scope`)
      t.same(operation.security, [{ bearerAuth: [scope] }], `${name}: the bearer security names it`)
      if (path !== '/metrics') t.match(operation.description, `Needs an API key with the \`${scope as string}\` scope.`, `${name}: its description says it`)
      if (scope !== 'read') t.ok(operation.responses['403'], `${name} documents the 403`)
      found[name] = scope as string
    }
  }
  // The table; a route of another scope would have to change it on purpose.
  t.match(found, {
    'GET /api/info': 'read',
    'GET /api/models': 'read',
    'GET /api/downloads': 'read',
    'GET /api/downloads/{job_id}': 'read',
    'GET /api/downloads/events': 'read',
    'GET /api/downloads/{job_id}/events': 'read',
    'GET /api/download-progress': 'read',
    'GET /api/default-model': 'read',
    'GET /api/providers': 'read',
    'GET /api/providers/{name}': 'read',
    'GET /api/providers/{name}/models': 'read',
    'GET /api/providers/{name}/diagnostics': 'read',
    'GET /api/system-status': 'read',
    'GET /api/limits': 'read',
    'GET /api/cache': 'read',
    'GET /metrics': 'read',
    'POST /api/providers/{name}/models/validate': 'read',
    'POST /api/download-model': 'download',
    'DELETE /api/downloads/{job_id}': 'download',
    'PATCH /api/downloads/{job_id}': 'download',
    'POST /api/downloads/{job_id}/pause': 'download',
    'POST /api/downloads/{job_id}/resume': 'download',
    'POST /api/models/verify': 'download',
    'POST /api/providers/{name}/check': 'download',
    'DELETE /api/delete-model': 'admin',
    'PUT /api/default-model': 'admin',
    'PUT /api/providers/{name}/token': 'admin',
    'POST /api/providers/{name}/models/block': 'admin',
    'DELETE /api/providers/{name}/models/block': 'admin',
    'PATCH /api/limits': 'admin',
    'PUT /api/models/pin': 'admin',
    'DELETE /api/models/pin': 'admin',
    'POST /api/cache/prune': 'admin'
  })
  for (const [name, scope] of Object.entries(found)) {
    if (name.startsWith('GET ')) t.equal(scope, 'read', `${name}: every GET only reads`)
  }
})

t.test('alone on a bare Fastify: a route behind the key declares its scope, or is refused when registered', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(errorsPlugin)
  await app.register(authPlugin, { config: { apiKeys: [], authDisabled: false, apiKeysFile: { path: '', keys: loadConfig({ HOME: '/h', API_KEYS_FILE: writeKeysFile(t) }).apiKeysFile!.keys } } })
  await app.register(async (api) => {
    api.addHook('onRoute', declaredScope)
    api.addHook('onRequest', api.requireApiKey)
    // A route added later (pause, prune…) only says what it needs.
    api.post('/jobs/:id/pause', { config: { scope: 'download' } }, async () => ({ paused: true }))
    api.post('/prune', { config: { scope: 'admin' } }, async () => ({ pruned: 0 }))
  })
  t.equal((await call(app, READER_KEY, { method: 'POST', url: '/jobs/1/pause' })).statusCode, 403)
  t.equal((await call(app, DOWNLOADER_KEY, { method: 'POST', url: '/jobs/1/pause' })).statusCode, 200)
  t.match((await call(app, DOWNLOADER_KEY, { method: 'POST', url: '/prune' })).json(), { code: 'MD_FORBIDDEN', details: { required_scope: 'admin' } })
  t.equal((await call(app, OPS_KEY, { method: 'POST', url: '/prune' })).statusCode, 200)

  const unscoped = Fastify()
  t.teardown(() => unscoped.close())
  void unscoped.register(async (api) => {
    api.addHook('onRoute', declaredScope)
    api.get('/scoped', { config: { scope: 'read' } }, async () => ({}))
    api.get('/forgotten', async () => ({}))
  })
  await t.rejects(async () => { await unscoped.ready() }, /GET \/forgotten declares no scope/)
})
