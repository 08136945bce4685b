import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { auth, buildTestApp } from '../helpers/app.js'
import { hubAndApp } from '../helpers/downloads.js'
import { writeCachedSnapshot } from '../helpers/hf-cache.js'
import { providersAndApp, TOKENS } from '../helpers/providers.js'

// A JSON body is taken as sent: a value of the wrong type is refused with 400 MD_VALIDATION_FAILED
// naming the field, and nothing is done with it. A query string is text, so there "true" is still a
// boolean and "5" a number.

const refusedFor = (field: string) => ({ statusCode: 400, code: 'MD_VALIDATION_FAILED', message: new RegExp(`\\b${field} must be .*\\(in body\\)`) })

t.test('download-model: a number where the body wants text is refused, and the Hub is never asked', async (t) => {
  const { app, hub } = await hubAndApp(t)
  const cases: Array<[string, Record<string, unknown>]> = [
    ['model_id', { model_id: 42 }],
    ['allow_patterns', { model_id: 'org/tiny', allow_patterns: 7 }],
    ['ignore_patterns', { model_id: 'org/tiny', ignore_patterns: [1, 2] }],
    ['revision', { model_id: 'org/tiny', revision: 1 }],
    ['callback_url', { model_id: 'org/tiny', callback_url: 5 }],
    ['set_default', { model_id: 'org/tiny', set_default: 'true' }],
    ['auto', { model_id: 'org/tiny', auto: 'false' }],
    ['auto', { model_id: 'org/tiny', auto: 0 }]
  ]
  for (const [field, payload] of cases) {
    const res = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload })
    t.match(res.json(), refusedFor(field), `${JSON.stringify(payload)} names ${field}`)
  }
  t.same(hub.requests, [], 'no request reached the Hub')
  t.same((await app.inject({ url: '/api/downloads', headers: auth() })).json().jobs, [], 'and no job was made')
})

t.test('download-model: a body of the right types, JSON null, or none at all, still works', async (t) => {
  const { app } = await hubAndApp(t)
  const plan = await app.inject({ method: 'POST', url: '/api/download-model', headers: auth(), payload: { model_id: 'org/tiny', auto: false, allow_patterns: ['*.json'] } })
  t.equal(plan.statusCode, 200)
  t.same(plan.json().files.map((file: { path: string }) => file.path).sort(), ['config.json', 'original/params.json', 'tokenizer.json'], 'a list of patterns')

  const nullBody = await app.inject({
    method: 'POST',
    url: '/api/download-model?model_id=org/tiny&auto=false',
    headers: { ...auth(), 'content-type': 'application/json' },
    payload: 'null'
  })
  t.equal(nullBody.statusCode, 200, 'JSON null: the query string alone')
  t.equal(nullBody.json().commit, plan.json().commit)

  const noBody = await app.inject({ method: 'POST', url: '/api/download-model?model_id=org/tiny&auto=false', headers: auth() })
  t.equal(noBody.statusCode, 200, 'no body: the query string alone')

  const bodyWins = await app.inject({ method: 'POST', url: '/api/download-model?model_id=org/nothing&auto=true', headers: auth(), payload: { model_id: 'org/tiny', auto: false } })
  t.equal(bodyWins.statusCode, 200, 'the body wins over the query string')
  t.equal(bodyWins.json().model_id, 'org/tiny')
})

t.test('download-model: the query string keeps its coercion ("true", "false", one value or several)', async (t) => {
  const { app } = await hubAndApp(t)
  const plan = await app.inject({ method: 'POST', url: '/api/download-model?model_id=org/tiny&auto=false&allow_patterns=*.json,*.safetensors', headers: auth() })
  t.equal(plan.statusCode, 200, 'auto=false is a boolean')
  t.same(plan.json().files.map((file: { path: string }) => file.path).sort(), ['config.json', 'model.safetensors', 'original/params.json', 'tokenizer.json'], 'one value, its commas separating patterns')
  const repeated = await app.inject({ method: 'POST', url: '/api/download-model?model_id=org/tiny&auto=false&allow_patterns=*.json&allow_patterns=*.safetensors', headers: auth() })
  t.equal(repeated.json().files.length, 4, 'a repeated parameter is a list')

  const started = await app.inject({ method: 'POST', url: '/api/download-model?model_id=org/tiny&set_default=true', headers: auth() })
  t.equal(started.statusCode, 202)
  t.equal(started.json().set_default, true, 'set_default=true is a boolean')
  const progress = await app.inject({ url: `/api/download-progress?job_id=${started.json().job_id as string}&wait=10`, headers: auth() })
  t.equal(progress.statusCode, 200, 'wait=10 is a number')
  t.match((await app.inject({ url: '/api/download-progress?wait=soon', headers: auth() })).json(), { statusCode: 400, message: /wait must be integer \(in query string\)/ })
})

t.test('delete-model: force must be a boolean in a body; force=true in the query string still is one', async (t) => {
  const { app } = await buildTestApp(t)
  const cacheDir = app.config.hubCacheDir
  const C1 = 'a'.repeat(40)
  writeCachedSnapshot(cacheDir, 'org/llama', C1, [{ path: 'config.json', content: '{}' }], ['main'])
  await app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: 'org/llama' } })

  for (const payload of [{ model_id: 'org/llama', force: 'yes' }, { model_id: 'org/llama', force: 'true' }, { model_id: 'org/llama', force: 1 }]) {
    const res = await app.inject({ method: 'DELETE', url: '/api/delete-model', headers: auth(), payload })
    t.match(res.json(), refusedFor('force'), `${JSON.stringify(payload.force)} is not a boolean`)
  }
  t.match((await app.inject({ method: 'DELETE', url: '/api/delete-model', headers: auth(), payload: { model_id: ['org/llama'] } })).json(), refusedFor('model_id'))
  t.ok(existsSync(join(cacheDir, 'models--org--llama')), 'nothing was deleted')

  const refused = await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/llama', headers: auth() })
  t.equal(refused.statusCode, 409, 'the default model needs force')
  const deleted = await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/llama&force=true', headers: auth() })
  t.equal(deleted.statusCode, 200, 'force=true in the query string')
  t.notOk(existsSync(join(cacheDir, 'models--org--llama')))
})

t.test('default-model: model_id must be text or null; false or 0 no longer clear the default', async (t) => {
  const { app } = await buildTestApp(t)
  t.equal((await app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: 'org/llama' } })).statusCode, 200)
  for (const modelId of [42, false, 0, ['org/llama'], {}]) {
    const res = await app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: modelId } })
    t.match(res.json(), { statusCode: 400, code: 'MD_VALIDATION_FAILED', message: /model_id must be null or string \(in body\)/ }, `${JSON.stringify(modelId)} is refused`)
  }
  t.equal((await app.inject({ url: '/api/default-model', headers: auth() })).json().model_id, 'org/llama', 'the default stays')
  const cleared = await app.inject({ method: 'PUT', url: '/api/default-model', headers: auth(), payload: { model_id: null } })
  t.equal(cleared.statusCode, 200)
  t.equal(cleared.json().model_id, null, 'null clears it')
})

t.test('provider token: the token must be text and validate a boolean in the body; ?validate=false still works', async (t) => {
  const { app, openrouter } = await providersAndApp(t)
  t.match((await app.inject({ method: 'PUT', url: '/api/providers/openrouter/token', headers: auth(), payload: { token: 12345678 } })).json(), refusedFor('token'))
  t.match((await app.inject({ method: 'PUT', url: '/api/providers/openrouter/token', headers: auth(), payload: { token: 'sk-or-v1-new', validate: 'false' } })).json(), refusedFor('validate'))
  t.equal((await app.inject({ url: '/api/providers/openrouter', headers: auth() })).json().token, 'sk-****5678', 'the token in use is unchanged')

  const calls = openrouter.requests.length
  const rotated = await app.inject({ method: 'PUT', url: '/api/providers/openrouter/token?validate=false', headers: auth(), payload: { token: 'sk-or-v1-unchecked-4321' } })
  t.equal(rotated.statusCode, 200, 'validate=false in the query string is a boolean')
  t.equal(rotated.json().check, null, 'and the token was not checked')
  t.notOk(openrouter.requests.slice(calls).some((request) => request.path.endsWith('/key')), 'no key check went upstream')
  await app.inject({ method: 'PUT', url: '/api/providers/openrouter/token?validate=false', headers: auth(), payload: { token: TOKENS.openrouter } })
})

t.test('provider models: model_id and reason must be text in a body', async (t) => {
  const { app } = await providersAndApp(t)
  t.match((await app.inject({ method: 'POST', url: '/api/providers/openrouter/models/validate', headers: auth(), payload: { model_id: 123 } })).json(), refusedFor('model_id'))
  const block = await app.inject({ method: 'POST', url: '/api/providers/openrouter/models/block', headers: auth(), payload: { model_id: 'openai/gpt-4o-mini', reason: 5 } })
  t.match(block.json(), refusedFor('reason'))
  t.equal((await app.inject({ url: '/api/providers/openrouter/diagnostics', headers: auth() })).json().blocks.length, 0, 'nothing was blocked')
  const list = await app.inject({ url: '/api/providers/openrouter/models?refresh=true&include_blocked=false', headers: auth() })
  t.equal(list.statusCode, 200, 'booleans in the query string still are')
  t.equal(list.json().from_cache, false)
})

t.test('the message names the field once, with every type it may have, and nothing about the other branches', async (t) => {
  const { app } = await buildTestApp(t)
  const refusal = async (method: 'POST' | 'PUT', url: string, payload: string): Promise<string> => {
    const res = await app.inject({ method, url, headers: { ...auth(), 'content-type': 'application/json' }, payload })
    t.equal(res.statusCode, 400)
    return res.json().message as string
  }
  t.equal(await refusal('POST', '/api/download-model', '{"model_id": 42}'), 'model_id must be string (in body)')
  t.equal(await refusal('POST', '/api/download-model', '{"model_id": "org/tiny", "allow_patterns": 7}'), 'allow_patterns must be string or array (in body)')
  t.equal(await refusal('POST', '/api/download-model', '"org/tiny"'), 'body must be object or null')
  t.equal(await refusal('PUT', '/api/default-model', '{"model_id": 5}'), 'model_id must be null or string (in body)')
})
