import t from 'tap'
import { auth, buildTestApp } from '../helpers/app.js'

// Found by the route fuzzer: Fastify refuses some URLs before routing, and answered those with its own
// body (code FST_ERR_*, a 414 labelled "Bad Request", no x-request-id). They answer in the common shape now.

t.test('a path parameter over 100 characters is a 400 of the common shape, naming where the problem is', async (t) => {
  const { app } = await buildTestApp(t)
  for (const url of [`/api/providers/${'x'.repeat(101)}/diagnostics`, `/api/downloads/${'a'.repeat(5000)}`]) {
    const res = await app.inject({ url, headers: auth() })
    t.equal(res.statusCode, 400, url.slice(0, 40))
    t.match(res.headers['content-type'], /^application\/json/)
    t.same(res.json(), { statusCode: 400, error: 'Bad Request', code: 'MD_VALIDATION_FAILED', message: 'a path parameter is longer than 100 characters (in path)' })
    t.match(res.headers['x-request-id'], /\S/, 'with a request id to find it in the logs')
  }
  t.equal((await app.inject({ url: `/api/providers/${'x'.repeat(100)}/diagnostics`, headers: auth() })).statusCode, 404, '100 characters still reach the route')
})

t.test('a path that does not percent-decode is a 400 of the common shape', async (t) => {
  const { app } = await buildTestApp(t)
  for (const url of ['/api/downloads/%zz', '/api/providers/%E0%A4%A/check', '/api/downloads/%']) {
    const res = await app.inject({ url, headers: auth() })
    t.equal(res.statusCode, 400, url)
    t.match(res.json(), { statusCode: 400, error: 'Bad Request', code: 'MD_BAD_REQUEST', message: /not a valid url component/, hint: /Percent-encode/ })
    t.match(res.headers['x-request-id'], /\S/)
  }
})
