import t from 'tap'
import { secretScrubber } from '../../src/logger.js'
import { auth, buildTestApp, KEY, OTHER_KEY } from '../helpers/app.js'

t.test('a run with secrets writes none of them to the logs', async (t) => {
  const secrets = {
    HF_TOKEN: 'hf_SuperSecretHubToken123',
    OPENROUTER_API_KEY: 'sk-or-v1-secretrouter',
    OPENAI_API_KEY: 'sk-openai-"quoted\\secret',
    MY_SERVICE_TOKEN: 'svc-token-abcdef',
    CALLBACK_SECRET: 'hmac-signing-secret-987'
  }
  const { app, rawLogs, logs } = await buildTestApp(t, { ...secrets, LOG_LEVEL: 'trace' })

  await app.inject({ url: '/api/info', headers: auth(KEY) })
  await app.inject({ url: '/api/info', headers: auth(OTHER_KEY) })
  await app.inject({ url: '/api/info', headers: auth(secrets.HF_TOKEN) })
  await app.inject({ url: `/api/nope?token=${secrets.HF_TOKEN}&key=${KEY}`, headers: auth(KEY) })
  await app.inject({ url: `/health?api_key=${encodeURIComponent(secrets.OPENAI_API_KEY)}`, headers: { 'x-api-key': secrets.MY_SERVICE_TOKEN, cookie: 'session=abc' } })
  // A careless future log call that dumps the whole configuration must still leak nothing.
  app.log.info({ config: app.config, headers: { authorization: `Bearer ${KEY}` } }, 'configuration dump')

  const text = rawLogs()
  t.ok(logs().length > 10, 'the run was logged')
  t.match(text, /configuration dump/)
  for (const [name, value] of Object.entries({ ...secrets, KEY, OTHER_KEY })) {
    t.notOk(text.includes(value), `${name} is not in the logs`)
    t.notOk(text.includes(JSON.stringify(value).slice(1, -1)), `${name} is not in the logs, JSON-escaped either`)
    t.notOk(text.includes(encodeURIComponent(value)), `${name} is not in the logs, URL-encoded either`)
  }
  t.match(text, /\[REDACTED\]/, 'secrets are replaced, not dropped silently')
})

t.test('every log line of a request carries its request id', async (t) => {
  const { app, logs } = await buildTestApp(t)
  await app.inject({ url: '/api/info', headers: { 'x-request-id': 'trace-me-1' } })
  const lines = logs().filter((line) => line.reqId === 'trace-me-1')
  t.same(lines.map((line) => line.msg), ['incoming request', 'request rejected: unauthorized', 'request completed'])
})

t.test('the scrubber replaces secrets inside longer strings, longest first', async (t) => {
  const scrub = secretScrubber(['abcd', 'abcdefgh'])
  t.equal(scrub('{"msg":"x abcdefgh y abcd"}'), '{"msg":"x [REDACTED] y [REDACTED]"}')
  t.equal(secretScrubber([])('unchanged'), 'unchanged')
})
