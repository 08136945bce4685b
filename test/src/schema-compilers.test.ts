import { createRequire } from 'node:module'
import t from 'tap'
import { DownloadProgress } from '../../routes/schemas/downloads.js'
import { ErrorResponse } from '../../plugins/errors.js'
import { onFirstCall, withoutSimpleUnions } from '../../src/schema-compilers.js'

// fast-json-stringify is Fastify's serializer; the test builds it as Fastify does, from a schema.
const build = createRequire(import.meta.url)('fast-json-stringify') as (schema: unknown, options?: { schema?: Record<string, unknown> }) => (value: unknown) => string

const job = {
  job_id: '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
  model_id: 'org/model',
  revision: 'main',
  commit: 'a'.repeat(40),
  status: 'downloading',
  progress: 40,
  bytes_downloaded: 400,
  bytes_total: 1000,
  bytes_transferred: 400,
  files_done: 1,
  files_total: 3,
  speed_bps: 5000,
  eta_seconds: 12,
  current_files: ['model.safetensors'],
  allow_patterns: ['*.json'],
  ignore_patterns: null,
  set_default: false,
  created_at: '2026-01-01T00:00:00.000Z',
  started_at: '2026-01-01T00:00:01.000Z',
  updated_at: '2026-01-01T00:00:02.000Z',
  completed_at: null,
  error: null,
  callback: null,
  active_downloads: 1,
  queued_downloads: 0
}

t.test('a job is serialized the same with its unions rewritten, whichever fields are null', async (t) => {
  const asDeclared = build(DownloadProgress)
  const rewritten = build(withoutSimpleUnions(DownloadProgress))
  const variants = [
    job,
    { ...job, eta_seconds: null, allow_patterns: null, ignore_patterns: ['*.md', 'docs/'], started_at: null, max_bytes_per_s: null },
    { ...job, status: 'error', max_bytes_per_s: 65536, completed_at: '2026-01-01T00:00:03.000Z', error: { code: 'MD_HUB_ERROR', message: 'gone', hint: 'retry' } },
    { ...job, status: 'complete', callback: { url: 'http://n8n:5678/x', attempts: 1, last_status: 200, delivered_at: '2026-01-01T00:00:04.000Z', error: null } }
  ]
  for (const value of variants) t.equal(rewritten(value), asDeclared(value), `status ${value.status}`)
  t.equal(JSON.stringify(withoutSimpleUnions(DownloadProgress)).includes('anyOf'), false, 'no union is left for Ajv to check')
})

t.test('an error with details is serialized the same', async (t) => {
  const error = { statusCode: 400, code: 'MD_BAD_REQUEST', error: 'Bad Request', message: 'no', details: { field: 'model_id', limit: 3, retry: false, choices: [{ a: 'b' }] } }
  t.equal(build(withoutSimpleUnions(ErrorResponse))(error), build(ErrorResponse)(error))
})

t.test('a nullable reference stays a reference, null or not', async (t) => {
  const Check = { $id: 'Check', type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] }
  const schema = { type: 'object', properties: { check: { anyOf: [{ $ref: 'Check#' }, { type: 'null' }] } } }
  const asDeclared = build(schema, { schema: { Check } })
  const rewritten = build(withoutSimpleUnions(schema), { schema: { Check } })
  for (const value of [{ check: null }, { check: { ok: true } }]) t.equal(rewritten(value), asDeclared(value))
})

t.test('a validator or serializer is compiled by its first call, once, and a validator\'s errors reach Fastify', async (t) => {
  let compiled = 0
  const validate = onFirstCall(() => {
    compiled++
    const check = Object.assign((value: unknown): boolean => {
      check.errors = typeof value === 'string' ? null : [{ message: 'must be string' }]
      return check.errors === null
    }, { errors: null as unknown })
    return check
  })
  t.equal(compiled, 0, 'nothing compiled when the route is added')
  t.equal(validate(42), false)
  t.same(validate.errors, [{ message: 'must be string' }], 'Fastify reads the failure from the function it called')
  t.equal(validate('ok'), true)
  t.equal(validate.errors, null)
  t.equal(compiled, 1, 'compiled once')
})
