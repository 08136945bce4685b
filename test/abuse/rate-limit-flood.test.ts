import { randomBytes } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { auth, buildTestApp, KEY, OTHER_KEY } from '../helpers/app.js'

// 300 requests at once, from one client: wrong keys get the client's budget and no more, however
// they vary the header (or claim another address); the right key gets its own budget and no more;
// and neither flood eats into the other's budget.

const LIMIT = 20
const FLOOD = 300

const count = (answers: LightMyRequestResponse[]): Record<number, number> =>
  answers.reduce<Record<number, number>>((counts, res) => ({ ...counts, [res.statusCode]: (counts[res.statusCode] ?? 0) + 1 }), {})

// Ways to get a key wrong, including the right key in a form that is refused.
const badHeaders = (i: number): Record<string, string> => {
  const forms = [`Bearer ${randomBytes(12).toString('hex')}`, `Bearer ${KEY.slice(0, -1)}${'abcdefghij'[i % 10] ?? 'x'}`, `bearer ${KEY}`, `Basic ${KEY}`, `Bearer  ${KEY}`, 'Bearer']
  // A forged X-Forwarded-For must not open a fresh budget (TRUST_PROXY is off).
  return { authorization: forms[i % forms.length] ?? '', 'x-forwarded-for': `10.0.${i % 256}.${i % 200}` }
}

const flood = async (app: FastifyInstance, url: string, headers: (i: number) => Record<string, string>): Promise<LightMyRequestResponse[]> =>
  Promise.all(Array.from({ length: FLOOD }, (_, i) => app.inject({ url, headers: headers(i) })))

t.test(`${FLOOD} wrong keys at once: the client's budget of ${LIMIT} is all that gets through`, async (t) => {
  const { app } = await buildTestApp(t, { RATE_LIMIT_PER_MINUTE: String(LIMIT) })
  const answers = await flood(app, '/api/info', badHeaders)
  t.same(count(answers), { 401: LIMIT, 429: FLOOD - LIMIT })
  const limited = answers.find((res) => res.statusCode === 429)
  t.match(limited?.json(), { statusCode: 429, error: 'Too Many Requests', code: 'MD_RATE_LIMITED', message: String, hint: String })
  t.ok(Number(limited?.headers['retry-after']) > 0, 'with Retry-After')
  t.equal((await app.inject({ url: '/api/info' })).statusCode, 429, 'the client stays limited')

  const good = await app.inject({ url: '/api/info', headers: auth() })
  t.equal(good.statusCode, 200, 'the right key still gets in')
  t.equal(good.headers['x-ratelimit-remaining'], String(LIMIT - 1), 'with its whole budget: the refused forms of it did not count against it')
})

t.test(`${FLOOD} requests with the right key at once: its budget of ${LIMIT} holds, and nobody else's is touched`, async (t) => {
  const { app } = await buildTestApp(t, { RATE_LIMIT_PER_MINUTE: String(LIMIT) })
  const answers = await flood(app, '/api/info', () => auth(KEY))
  t.same(count(answers), { 200: LIMIT, 429: FLOOD - LIMIT })
  t.equal((await app.inject({ url: '/api/info', headers: auth(OTHER_KEY) })).statusCode, 200, 'the other key has its own budget')
  t.equal((await app.inject({ url: '/api/info', headers: auth('wrong-key') })).statusCode, 401, "the client's budget for requests without a valid key is untouched")
})

t.test('the routes outside /api that take a key share the same budget', async (t) => {
  const { app } = await buildTestApp(t, { RATE_LIMIT_PER_MINUTE: String(LIMIT), DOCS_PUBLIC: 'false', METRICS_PUBLIC: 'false' })
  t.same(count(await flood(app, '/metrics', badHeaders)), { 401: LIMIT, 429: FLOOD - LIMIT }, '/metrics')
  t.same(count(await flood(app, '/docs/json', badHeaders)), { 429: FLOOD }, '/docs/json, after the budget went on /metrics')
  t.equal((await app.inject({ url: '/api/info' })).statusCode, 429, 'and /api')
  t.equal((await app.inject({ url: '/metrics', headers: auth() })).statusCode, 200, 'the right key still gets in')
})
