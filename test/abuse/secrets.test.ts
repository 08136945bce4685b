import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { auth, KEY, OTHER_KEY } from '../helpers/app.js'
import { providersAndApp, TOKENS } from '../helpers/providers.js'

// A user's API keys and provider tokens never reach a log line or an answer, wherever a request puts
// them and whatever the upstream says back: the log stream and every answer of a busy session are
// searched for each one.

const ROTATED = 'sk-or-v1-rotated-secret-7777'
const REJECTED = 'sk-openai-rejected-secret-8888'
const PROVIDERS = ['huggingface', 'openrouter', 'openai']

t.test('keys and tokens are in no log line and no answer', async (t) => {
  // At trace level, so the debug lines (upstream calls, retries) are searched too.
  const { app, hub, rawLogs } = await providersAndApp(t, { LOG_LEVEL: 'trace' })
  hub.addRepo({ id: 'org/gated', gated: 'manual', allowedTokens: [], revisions: { main: { commit: '3'.repeat(40), files: [{ path: 'config.json', content: '{}' }] } } })
  const answers: Array<{ request: string, res: LightMyRequestResponse }> = []
  const send = async (options: InjectOptions): Promise<LightMyRequestResponse> => {
    const res = await app.inject(options)
    answers.push({ request: `${options.method ?? 'GET'} ${String(options.url)}`, res })
    return res
  }

  // Everything that shows a provider, its token, its checks and its errors.
  for (const name of PROVIDERS) {
    for (const url of [`/api/providers/${name}`, `/api/providers/${name}/diagnostics`, `/api/providers/${name}/models`]) await send({ url, headers: auth() })
    await send({ method: 'POST', url: `/api/providers/${name}/check`, headers: auth() })
  }
  t.equal((await send({ method: 'PUT', url: '/api/providers/openrouter/token?validate=false', headers: auth(), payload: { token: ROTATED } })).statusCode, 200, 'a token is rotated')
  t.equal((await send({ method: 'PUT', url: '/api/providers/openai/token', headers: auth(), payload: { token: REJECTED } })).statusCode, 422, 'another is refused by its check')
  // The rotated token is wrong upstream: its failures are recorded and shown.
  await send({ method: 'POST', url: '/api/providers/openrouter/check', headers: auth() })
  await send({ url: '/api/providers/openrouter/models?refresh=true', headers: auth() })
  for (const url of ['/api/providers', '/api/providers/openrouter/diagnostics', '/api/system-status', '/api/info', '/metrics', '/docs/json']) await send({ url, headers: auth() })

  // Downloads with HF_TOKEN: the plan's ready-made commands, a job, and a gated model's refusal.
  t.equal((await send({ method: 'POST', url: '/api/download-model?model_id=org/tiny&auto=false', headers: auth() })).statusCode, 200, 'a plan')
  const started = await send({ method: 'POST', url: '/api/download-model', headers: auth(), payload: { model_id: 'org/tiny' } })
  await send({ url: `/api/download-progress?job_id=${started.json().job_id as string}&wait=5`, headers: auth() })
  t.equal((await send({ method: 'POST', url: '/api/download-model', headers: auth(), payload: { model_id: 'org/gated' } })).statusCode, 403, 'a gated model')

  // Refused keys: nothing of them comes back.
  for (const attempt of [`${KEY}x`, KEY.slice(0, -1), `${OTHER_KEY} ${KEY}`]) await send({ url: '/api/info', headers: { authorization: `Bearer ${attempt}` } })

  const secrets = [KEY, OTHER_KEY, TOKENS.hf, TOKENS.openrouter, TOKENS.openai, ROTATED, REJECTED]
  const leaks = answers.flatMap(({ request, res }) => secrets
    .filter((secret) => res.body.includes(secret) || JSON.stringify(res.headers).includes(secret))
    .map((secret) => `${request} answered ${secret.slice(0, 8)}…`))
  t.same(leaks, [], `no secret in any of ${answers.length} answers`)

  // Secrets a client put where a log line shows them: the URL of the request.
  await app.inject({ url: `/api/info?api_key=${KEY}`, headers: auth() })
  await app.inject({ url: `/api/providers/${TOKENS.openai}/diagnostics?token=${encodeURIComponent(TOKENS.hf)}`, headers: auth() })
  await app.inject({ url: `/api/nothing?key=${OTHER_KEY}` })
  const logs = rawLogs()
  t.ok(logs.includes('/api/info?api_key=[REDACTED]'), 'a key in a URL is logged redacted')
  t.same(secrets.filter((secret) => logs.includes(secret)).map((secret) => `${secret.slice(0, 8)}…`), [], 'no secret in the logs')
  const attempts = [`${KEY}x`, KEY.slice(0, -1)]
  t.same(attempts.filter((attempt) => logs.includes(attempt)), [], 'nor the refused keys, which are one character from the real one')
})
