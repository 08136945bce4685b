import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { listeningPort, startServer, type ServerProcess } from '../helpers/server-process.js'

const OLD_KEY = 'old-reader-key-0123456789abcdef'
const NEW_KEY = 'new-reader-key-0123456789abcdef'
const BROKEN_KEY = 'zq7-unparsed-key-0123456789abcdef'
const OPS_KEY = 'ops-admin-key-0123456789abcdef'

const keysJson = (entries: Array<Record<string, unknown>>): string => JSON.stringify(entries, null, 2)

/** Waits until the server has written `count` lines matching `pattern` (a reload is logged once done). */
async function logged (server: ServerProcess, pattern: RegExp, count = 1): Promise<void> {
  const global = new RegExp(pattern.source, 'g')
  while ((server.stdout().match(global) ?? []).length < count) {
    if (server.child.exitCode !== null) throw new Error(`server exited: ${server.stderr()}${server.stdout()}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

t.test('an invalid API_KEYS_FILE stops the server at start-up with one line, and no key in it', async (t) => {
  const dir = t.testdir({})
  const cases: Array<[string, RegExp]> = [
    [keysJson([{ name: 'ops', key: OLD_KEY, scopes: ['admin'] }, { name: 'ops', key: NEW_KEY, scopes: ['read'] }]),
      /^modeldepot: API_KEYS_FILE entry 1 \("ops"\): name is used by another key: names must be unique/],
    [`[{"name": "ops", "key": "${OLD_KEY}", "scopes": ["admin"]`, /^modeldepot: API_KEYS_FILE .* is not valid JSON/],
    [keysJson([{ name: 'ops', key: OLD_KEY, scope: ['admin'] }]), /^modeldepot: API_KEYS_FILE entry 0 \("ops"\): scope is not a known field/],
    [keysJson([{ name: 'ops', key: OLD_KEY, scopes: ['root'] }]), /^modeldepot: API_KEYS_FILE entry 0 \("ops"\): scopes must be a non-empty array of "read", "download", "admin"/]
  ]
  for (const [text, line] of cases) {
    const file = join(dir, 'keys.json')
    writeFileSync(file, text)
    const server = startServer(t, { API_KEYS_FILE: file, HF_HUB_CACHE: join(dir, 'cache') }, dir)
    t.equal(await server.exited, 1, 'exit code 1')
    const lines = server.stderr().trimEnd().split('\n')
    t.equal(lines.length, 1, 'one line')
    t.match(lines[0], line)
    t.notOk(server.stderr().includes(OLD_KEY) || server.stderr().includes(NEW_KEY), 'no key is shown')
  }
})

t.test('SIGHUP reloads API_KEYS_FILE without a restart; a broken file keeps the old keys', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'keys.json')
  writeFileSync(file, keysJson([{ name: 'reader', key: OLD_KEY, scopes: ['read'] }, { name: 'ops', key: OPS_KEY, scopes: ['admin'] }]))
  const server = startServer(t, { API_KEYS_FILE: file, HF_HUB_CACHE: join(dir, 'cache') }, dir)
  const port = await listeningPort(server)
  const status = async (key: string, method = 'GET', path = '/api/info'): Promise<number> =>
    (await fetch(`http://127.0.0.1:${port}${path}`, { method, headers: { authorization: `Bearer ${key}` } })).status

  t.equal(await status(OLD_KEY), 200, 'the old key works')
  t.equal(await status(NEW_KEY), 401, 'the new key does not, yet')

  writeFileSync(file, keysJson([{ name: 'reader', key: NEW_KEY, scopes: ['read', 'admin'] }, { name: 'ops', key: OPS_KEY, scopes: ['admin'] }]))
  server.child.kill('SIGHUP')
  await logged(server, /"msg":"API keys reloaded from API_KEYS_FILE"/)
  t.equal(await status(OLD_KEY), 401, 'the old key is refused')
  t.equal(await status(NEW_KEY), 200, 'the new key works')
  t.equal(await status(NEW_KEY, 'DELETE', '/api/delete-model?model_id=org/tiny'), 404, 'with its new scope (admin: past the scope check)')
  t.equal(server.child.exitCode, null, 'the process is still running')

  // A key without its quotes: the parser's own message would quote the text from the fault on, the key.
  writeFileSync(file, `[{"name": "later", "key": ${BROKEN_KEY}, "scopes": ["admin"]}]`)
  server.child.kill('SIGHUP')
  await logged(server, /"msg":"API_KEYS_FILE not reloaded: the keys stay as they were"/)
  t.match(server.stdout(), /"reason":"API_KEYS_FILE \S+ is not valid JSON[^"]*"/, 'the log says why')
  t.equal(await status(NEW_KEY), 200, 'the keys before the broken file still work')
  t.equal(await status(BROKEN_KEY), 401, 'the broken file\'s key does not')

  // A file that parses but is not valid (a duplicate name) is refused the same way.
  writeFileSync(file, keysJson([{ name: 'a', key: BROKEN_KEY, scopes: ['read'] }, { name: 'a', key: OLD_KEY, scopes: ['read'] }]))
  server.child.kill('SIGHUP')
  await logged(server, /"msg":"API_KEYS_FILE not reloaded: the keys stay as they were"/, 2)
  t.match(server.stdout(), /"reason":"API_KEYS_FILE entry 1 \(\\"a\\"\): name is used by another key/)
  t.equal(await status(NEW_KEY), 200)
  t.equal(await status(OLD_KEY), 401)

  const output = server.stdout() + server.stderr()
  for (const key of [OLD_KEY, NEW_KEY, BROKEN_KEY, OPS_KEY]) t.notOk(output.includes(key), 'no key is in the log')
  t.notOk(output.includes(BROKEN_KEY.slice(0, 10)), 'not even the start of one')
  t.match(output, /"key_name":"reader"/, 'the access log names the key')

  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0, 'SIGTERM still shuts it down')
})

t.test('without API_KEYS_FILE, SIGHUP shuts down gracefully as before', async (t) => {
  const dir = t.testdir({})
  const server = startServer(t, { API_KEY: OPS_KEY, HF_HUB_CACHE: join(dir, 'cache') }, dir)
  await listeningPort(server)
  server.child.kill('SIGHUP')
  t.equal(await server.exited, 0)
  t.match(server.stdout(), /"signal":"SIGHUP".*"msg":"shutting down"/)
})
