import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { KEY } from '../helpers/app.js'
import { listeningPort, startServer } from '../helpers/server-process.js'

// Issue 18, idle RSS: the schemas are built with TypeBox's Type from one bundled module
// (dist/src/type-builder.js, written by scripts/bundle-type-builder.ts at build time), not from the
// typebox package's 373 modules, each of which Node keeps, with its source and compiled code, for the
// life of the process (5 MB of the server's RSS at rest). The real server is started with a resolve
// hook that writes down every module it loads.

const HOOKS = `
import { appendFileSync } from 'node:fs'
export async function resolve (specifier, context, next) {
  const resolved = await next(specifier, context)
  appendFileSync(process.env.MODELDEPOT_TEST_LOADED, resolved.url + '\\n')
  return resolved
}
`
const REGISTER = `
import { register } from 'node:module'
register('./hooks.mjs', import.meta.url)
`

t.test('the server loads TypeBox as one bundled module, not the typebox package', async (t) => {
  const cwd = t.testdir({ cache: {}, 'hooks.mjs': HOOKS, 'register.mjs': REGISTER, 'loaded.txt': '' })
  const loadedFile = join(cwd, 'loaded.txt')
  const server = startServer(t, { API_KEY: KEY, HF_HUB_CACHE: join(cwd, 'cache'), MODELDEPOT_TEST_LOADED: loadedFile }, cwd, ['--import', join(cwd, 'register.mjs')])
  const port = await listeningPort(server)
  // A route whose body the TypeBox-built schema checks still answers a bad body with the API's error.
  const answer = await fetch(`http://127.0.0.1:${port}/api/download-model`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ model_id: 42 }) })
  t.equal(answer.status, 400)
  t.match(await answer.json(), { code: 'MD_VALIDATION_FAILED' }, 'the schema still checks the body')
  const loaded = readFileSync(loadedFile, 'utf8').split('\n').filter((url) => url !== '')
  t.ok(loaded.some((url) => url.endsWith('/dist/src/server.js')), 'the hook saw the server load')
  t.ok(loaded.some((url) => url.endsWith('/dist/src/type-builder.js')), 'the bundled Type is loaded')
  t.same(loaded.filter((url) => url.includes('/node_modules/typebox/')), [], 'no module of the typebox package is')
})
