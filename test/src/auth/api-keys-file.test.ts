import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ApiKeys } from '../../../src/auth/api-keys.js'
import { loadConfig } from '../../../src/config.js'

const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex')

t.test('API_KEYS_FILE: named keys with scopes, a key or its SHA-256', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'keys.json')
  writeFileSync(file, JSON.stringify([
    { name: 'n8n-reader', key: 'reader-key-123456', scopes: ['read'] },
    { name: 'fetcher', key_sha256: sha256('fetcher-key-123456').toUpperCase(), scopes: ['read', 'download'] },
    { name: 'ops', key: 'ops-key-123456', scopes: ['admin', 'read'] }
  ]))
  const config = loadConfig({ HOME: '/h', API_KEYS_FILE: file })
  t.same(config.apiKeys, [], 'API_KEY is optional with the file')
  t.equal(config.apiKeysFile?.path, file)
  const keys = new ApiKeys(config.apiKeysFile?.keys ?? [])
  t.same(keys.identify('reader-key-123456'), { name: 'n8n-reader', scope: 'read' })
  t.same(keys.identify('fetcher-key-123456'), { name: 'fetcher', scope: 'download' }, 'the broadest scope listed; hex in either case')
  t.same(keys.identify('ops-key-123456'), { name: 'ops', scope: 'admin' })
  t.equal(keys.identify('ops-key-12345'), undefined, 'a prefix is not the key')
  t.ok(config.secrets.includes('reader-key-123456') && config.secrets.includes('ops-key-123456'), 'the plain keys are hidden in the logs')
})

t.test('an API_KEYS_FILE that cannot be used stops the start, naming the entry and never the key', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'keys.json')
  const KEY = 'the-secret-key-123456'
  const cases: Array<[unknown, RegExp, Record<string, string>?]> = [
    [{ name: 'a', key: KEY, scopes: ['read'] }, /^API_KEYS_FILE \S+ must hold a JSON array/],
    [[{ name: 'a', key: KEY, scopes: ['read'] }, { name: 'a', key: 'other-key-123456', scopes: ['read'] }], /^API_KEYS_FILE entry 1 \("a"\): name is used by another key/],
    [[{ name: 'api_key', key: KEY, scopes: ['read'] }], /^API_KEYS_FILE entry 0 \("api_key"\): name is used by another key.*api_key is the name of the keys in API_KEY/, { API_KEY: 'env-key-123456' }],
    [[{ name: 'a', key: KEY, scopes: ['read'] }, { name: 'b', key_sha256: sha256(KEY), scopes: ['admin'] }], /^API_KEYS_FILE entry 1 \("b"\): key is the same as the key named "a"/],
    [[{ name: 'a', key: KEY, key_sha256: sha256(KEY), scopes: ['read'] }], /^API_KEYS_FILE entry 0 \("a"\): key or key_sha256 must be given, and only one of them/],
    [[{ name: 'a', scopes: ['read'] }], /key or key_sha256 must be given/],
    [[{ name: 'a', key_sha256: 'abc', scopes: ['read'] }], /key_sha256 must be the SHA-256 of the key in 64 hex digits/],
    [[{ name: 'a', key: 'has a space', scopes: ['read'] }], /key must be printable ASCII characters without spaces/],
    [[{ name: 'a', key: KEY, scopes: [] }], /scopes must be a non-empty array/],
    [[{ name: 'a', key: KEY }], /scopes must be a non-empty array/],
    [[{ name: 'bad name', key: KEY, scopes: ['read'] }], /^API_KEYS_FILE entry 0: name must be 1-64 letters/],
    [['just-a-string'], /^API_KEYS_FILE entry 0 must be an object/],
    // The parser's own message would quote the key here; only where the fault is, is kept, when it is known.
    [`[{"name": "a", "key": ${KEY}}]`, /^API_KEYS_FILE \S+ is not valid JSON$/],
    [`[{"name": "a" "key": "${KEY}"}]`, /^API_KEYS_FILE \S+ is not valid JSON \(at position 14/],
    [[], /^API_KEY is missing: set one key or several, comma-separated, or API_KEYS_FILE/]
  ]
  for (const [content, message, env] of cases) {
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content))
    const error = t.throws(() => loadConfig({ HOME: '/h', API_KEYS_FILE: file, ...env }), { name: 'ConfigError', message }) as Error
    t.notOk(error.message.includes(KEY.slice(0, 8)), 'the key is not in the message')
  }
  t.throws(() => loadConfig({ HOME: '/h', API_KEYS_FILE: join(dir, 'missing.json') }), { name: 'ConfigError', message: /^API_KEYS_FILE \S+missing.json cannot be read \(ENOENT\)/ })
})
