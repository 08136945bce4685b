import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import openapiTS, { astToString } from 'openapi-typescript'
import t from 'tap'
import { buildTestApp, KEY } from '../helpers/app.js'
import { repoFile } from '../helpers/repo-root.js'

const run = promisify(execFile)
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

// The client an OpenAPI user would write: types from the committed document, calls through openapi-fetch.
const CLIENT = `
import createClient from 'openapi-fetch'
import type { paths } from './api.js'

export async function useTheApi (baseUrl: string, key: string) {
  const client = createClient<paths>({ baseUrl })
  const info = await client.GET('/api/info', { headers: { authorization: \`Bearer \${key}\` } })
  if (info.error !== undefined) throw new Error(info.error.code)
  const cacheDir: string = info.data.settings.cache_dir
  const tokenSet: boolean = info.data.settings.hf_token_set

  const denied = await client.GET('/api/info')
  const code: string | undefined = denied.error?.code
  const hint: string | undefined = denied.error?.hint

  const health = await client.GET('/health/ready')
  const status: 'ok' | 'unavailable' | undefined = health.data?.status
  return { version: info.data.version, cacheDir, tokenSet, deniedStatus: denied.response.status, code, hint, status }
}
`

// A mistake the generated types must catch, or the client is not really typed.
const MISTAKE = `
import createClient from 'openapi-fetch'
import type { paths } from './api.js'
const client = createClient<paths>({ baseUrl: 'http://x' })
const info = await client.GET('/api/info')
export const wrong: number = info.data!.settings.cache_dir
`

// The tests run as compiled JavaScript, so the client is compiled beside its source (`emit`) to be imported.
async function typecheck (file: string, emit = false): Promise<{ ok: boolean, output: string }> {
  try {
    await run(process.execPath, [tsc, ...(emit ? [] : ['--noEmit']), '--strict', '--skipLibCheck', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', file])
    return { ok: true, output: '' }
  } catch (err) {
    return { ok: false, output: String((err as { stdout?: string }).stdout) }
  }
}

t.test('a client generated from openapi/openapi.json type-checks and calls the running app', async (t) => {
  // Inside the project, so the fixture resolves openapi-fetch from node_modules.
  const dir = t.testdir({ 'package.json': JSON.stringify({ type: 'module' }) })
  const types = astToString(await openapiTS(pathToFileURL(repoFile('openapi/openapi.json'))))
  await writeFile(join(dir, 'api.ts'), types)
  await writeFile(join(dir, 'client.ts'), CLIENT)
  await writeFile(join(dir, 'mistake.ts'), MISTAKE)

  const checked = await typecheck(join(dir, 'client.ts'), true)
  t.ok(checked.ok, `the client type-checks${checked.output === '' ? '' : `:\n${checked.output}`}`)
  const mistake = await typecheck(join(dir, 'mistake.ts'))
  t.notOk(mistake.ok, 'a wrongly typed use is rejected')
  t.match(mistake.output, /Type 'string' is not assignable to type 'number'/)

  const { app } = await buildTestApp(t)
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const client = await import(pathToFileURL(join(dir, 'client.js')).href) as { useTheApi: (baseUrl: string, key: string) => Promise<Record<string, unknown>> }
  t.same(await client.useTheApi(address, KEY), {
    version: app.swagger().info.version,
    cacheDir: app.config.hubCacheDir,
    tokenSet: false,
    deniedStatus: 401,
    code: 'MD_UNAUTHORIZED',
    hint: 'Send the header "Authorization: Bearer <key>" with one of the keys set in API_KEY or API_KEYS_FILE.',
    status: 'ok'
  })
})
