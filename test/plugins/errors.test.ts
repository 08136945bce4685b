import { Writable } from 'node:stream'
import Fastify, { type FastifyBaseLogger } from 'fastify'
import t, { type Test } from 'tap'
import { Type } from 'typebox'
import errorsPlugin from '../../plugins/errors.js'
import { insufficientStorage } from '../../src/downloads/job-errors.js'
import { HINTS, MdProviderUnavailableError, MdTokenRejectedError } from '../../src/errors.js'
import { hubError } from '../../src/hub/hub-client.js'
import { createLogger, SecretList } from '../../src/logger.js'

async function bareApp (t: Test) {
  const lines: string[] = []
  const logDestination = new Writable({ write (chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb() } })
  const app = Fastify({ loggerInstance: createLogger({ logLevel: 'info' }, new SecretList(), logDestination) as FastifyBaseLogger })
  t.teardown(() => app.close())
  await app.register(errorsPlugin)
  app.post('/things', {
    schema: {
      body: Type.Object({ model_id: Type.String({ minLength: 1 }), count: Type.Optional(Type.Integer({ minimum: 1 })) }),
      querystring: Type.Object({ wait: Type.Optional(Type.Integer({ maximum: 60 })) })
    }
  }, async () => ({ ok: true }))
  app.get('/boom', async () => { throw new Error('ENOENT: no such file /secret/internal/path') })
  return { app, logs: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) }
}

const shape = { statusCode: Number, error: String, code: String, message: String }

t.test('validation errors name the field and where it was', async (t) => {
  const { app } = await bareApp(t)
  const missing = await app.inject({ method: 'POST', url: '/things', payload: {} })
  t.equal(missing.statusCode, 400)
  t.same(missing.json(), { statusCode: 400, error: 'Bad Request', code: 'MD_VALIDATION_FAILED', message: 'model_id is required (in body)' })

  const wrongType = await app.inject({ method: 'POST', url: '/things', payload: { model_id: 'x', count: 0 } })
  t.equal(wrongType.json().message, 'count must be >= 1 (in body)')

  const query = await app.inject({ method: 'POST', url: '/things?wait=99', payload: { model_id: 'x' } })
  t.equal(query.json().message, 'wait must be <= 60 (in query string)')
})

t.test('malformed bodies get the same shape', async (t) => {
  const { app } = await bareApp(t)
  const badJson = await app.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'application/json' }, payload: '{"model_id":' })
  t.equal(badJson.statusCode, 400)
  t.match(badJson.json(), { ...shape, code: 'MD_BAD_REQUEST', hint: 'Check that the body is valid JSON.' })

  const wrongMedia = await app.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'text/csv' }, payload: 'a,b' })
  t.equal(wrongMedia.statusCode, 415)
  t.match(wrongMedia.json(), { ...shape, code: 'MD_UNSUPPORTED_MEDIA_TYPE', hint: /application\/json/ })
})

t.test('unknown routes answer 404 in the common shape', async (t) => {
  const { app } = await bareApp(t)
  const res = await app.inject({ method: 'DELETE', url: '/nowhere?x=1' })
  t.equal(res.statusCode, 404)
  t.match(res.json(), { statusCode: 404, error: 'Not Found', code: 'MD_ROUTE_NOT_FOUND', message: 'Route DELETE /nowhere not found', hint: String })
})

t.test('an unexpected error answers 500 without internals and is logged with the request id', async (t) => {
  const { app, logs } = await bareApp(t)
  const res = await app.inject({ url: '/boom' })
  t.equal(res.statusCode, 500)
  t.same(Object.keys(res.json()).sort(), ['code', 'error', 'hint', 'message', 'statusCode'])
  t.match(res.json(), { statusCode: 500, error: 'Internal Server Error', code: 'MD_INTERNAL_ERROR', message: 'Internal server error' })
  t.notMatch(res.body, /secret|internal\/path|at .*\.ts/, 'no stack or path')
  const logged = logs().find((line) => line.msg === 'request failed')
  t.ok(logged, '5xx is logged')
  t.equal(logged?.level, 50)
  t.type(logged?.reqId, 'string')
  t.match(logged?.err, { message: /ENOENT/ }, 'the log keeps the cause')
})

t.test('an error answers with the headers, details and hint its constructor set', async (t) => {
  const { app } = await bareApp(t)
  app.get('/cooling', async () => {
    throw new MdProviderUnavailableError('huggingface', { status: 'rate_limited', retryAfterS: 42, cooldownUntil: '2026-11-22T12:00:42.000Z' })
  })
  app.get('/hub', async () => { throw await hubError(new Response('', { status: 503, headers: { 'retry-after': '9' } }), 'https://hub.test') })
  app.get('/full', async () => { throw insufficientStorage('org/huge', 2000, 1000) })
  app.get('/token', async () => { throw new MdTokenRejectedError('The new openai token failed its check', 'Create a new key.') })

  const cooling = await app.inject({ url: '/cooling' })
  t.equal(cooling.statusCode, 503)
  t.equal(cooling.headers['retry-after'], '42')
  t.same(cooling.json(), {
    statusCode: 503,
    error: 'Service Unavailable',
    code: 'MD_PROVIDER_UNAVAILABLE',
    message: 'Provider huggingface is not taking calls right now (rate_limited)',
    hint: HINTS.MD_PROVIDER_UNAVAILABLE,
    details: { provider: 'huggingface', status: 'rate_limited', cooldown_until: '2026-11-22T12:00:42.000Z', retry_after_s: 42 }
  })

  const hub = await app.inject({ url: '/hub' })
  t.same([hub.statusCode, hub.headers['retry-after'], hub.json().code], [502, '9', 'MD_HUB_ERROR'], "the Hub's Retry-After is passed on")

  const full = await app.inject({ url: '/full' })
  t.same([full.statusCode, full.json().details], [507, { needed_bytes: 2000, free_bytes: 1000 }])
  t.equal((await app.inject({ url: '/token' })).json().hint, 'Create a new key.', 'its own hint over the code\'s')
})

t.test("another library's error keeps its headers, as Fastify's own handler would, but not fields of its own", async (t) => {
  const { app } = await bareApp(t)
  // What @fastify/static sends for a range past the end of a file (http-errors, with headers).
  app.get('/range', async () => {
    throw Object.assign(new Error('Range Not Satisfiable'), { statusCode: 416, headers: { 'content-range': 'bytes */10' }, details: { path: '/x' } })
  })
  const res = await app.inject({ url: '/range' })
  t.equal(res.statusCode, 416)
  t.equal(res.headers['content-range'], 'bytes */10')
  t.same(res.json(), { statusCode: 416, error: 'Range Not Satisfiable', code: 'MD_RANGE_NOT_SATISFIABLE', message: 'Range Not Satisfiable' })
})

t.test('an error that is not ours, with a status that has no code of its own, answers the code of its class', async (t) => {
  const { app } = await bareApp(t)
  app.get('/teapot', async () => { throw Object.assign(new Error("I'm a teapot"), { statusCode: 418 }) })
  app.get('/gateway', async () => { throw Object.assign(new Error('upstream said no'), { statusCode: 502 }) })
  t.match((await app.inject({ url: '/teapot' })).json(), { statusCode: 418, code: 'MD_BAD_REQUEST', message: "I'm a teapot" })
  t.match((await app.inject({ url: '/gateway' })).json(), { statusCode: 502, code: 'MD_INTERNAL_ERROR', message: 'Internal server error' })
})
