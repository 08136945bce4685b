import { join } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig, maskedRedisUrl } from '../../src/config.js'

const base = { API_KEY: 'k-123456', HOME: '/home/ada' }

t.test('defaults are what .env.example says', async (t) => {
  const config = loadConfig(base)
  t.equal(config.port, 8787)
  t.equal(config.host, '0.0.0.0')
  t.equal(config.logLevel, 'info')
  t.equal(config.trustProxy, false)
  t.equal(config.rateLimitPerMinute, 60)
  t.equal(config.docsPublic, true)
  t.equal(config.authDisabled, false)
  t.equal(config.hfEndpoint, 'https://huggingface.co')
  t.equal(config.hubCacheDir, '/home/ada/.cache/huggingface/hub')
  t.equal(config.defaultModel, undefined)
  t.equal(config.hfToken, undefined)
  t.same(config.serverTimeouts, { requestMs: 30000, headersMs: 10000, keepAliveMs: 72000, connectionMs: 120000 })
  t.same(config.redis, { url: undefined, keyPrefix: 'modeldepot:', jobLeaseMs: 15000 }, 'no Redis: everything in memory')
})

t.test('API_KEY takes several comma-separated keys', async (t) => {
  t.same(loadConfig({ ...base, API_KEY: ' one-key , two-key,,one-key ' }).apiKeys, ['one-key', 'two-key'])
})

t.test('a bad value stops start-up with one line naming the variable and what it expects', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /^PORT is invalid: expected a TCP port, 0-65535 \(0 picks a free one\) \(got "eighty"\)$/],
    [{ PORT: '70000' }, /^PORT is invalid/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL is invalid: expected one of fatal, error, warn, info, debug, trace, silent/],
    [{ AUTH_DISABLED: 'yes' }, /^AUTH_DISABLED is invalid: expected true or false/],
    [{ RATE_LIMIT_PER_MINUTE: '0' }, /^RATE_LIMIT_PER_MINUTE is invalid/],
    [{ DOCS_PUBLIC: 'maybe' }, /^DOCS_PUBLIC is invalid/],
    [{ HF_ENDPOINT: 'not a url' }, /^HF_ENDPOINT is invalid: expected an http\(s\) URL/],
    [{ HF_ENDPOINT: 'ftp://example.org' }, /^HF_ENDPOINT is invalid/],
    [{ TRUST_PROXY: 'everyone!' }, /^TRUST_PROXY is invalid/],
    [{ API_KEY: 'has space' }, /^API_KEY is invalid/],
    [{ HEADERS_TIMEOUT_MS: '0' }, /^HEADERS_TIMEOUT_MS is invalid: expected milliseconds, at least 1/],
    [{ HEADERS_TIMEOUT_MS: '40000' }, /^HEADERS_TIMEOUT_MS is invalid: expected at most REQUEST_TIMEOUT_MS \(30000\) \(got "40000"\)$/]
  ]
  for (const [env, message] of cases) {
    const err = t.throws(() => loadConfig({ ...base, ...env }), ConfigError, JSON.stringify(env)) as unknown as Error
    t.match(err.message, message)
    t.notMatch(err.message, /\n/, 'one line')
  }
})

t.test('without API_KEY the server refuses to start, unless AUTH_DISABLED=true', async (t) => {
  t.throws(() => loadConfig({ HOME: '/h' }), { name: 'ConfigError', message: /^API_KEY is missing/ })
  t.throws(() => loadConfig({ HOME: '/h', API_KEY: ' , ' }), { message: /^API_KEY is missing/ })
  const open = loadConfig({ HOME: '/h', AUTH_DISABLED: 'true' })
  t.equal(open.authDisabled, true)
  t.same(open.apiKeys, [])
})

t.test('empty values count as unset, as in a .env copied from .env.example', async (t) => {
  const config = loadConfig({ ...base, PORT: '', HF_HUB_CACHE: '', HF_ENDPOINT: ' ' })
  t.equal(config.port, 8787)
  t.equal(config.hubCacheDir, '/home/ada/.cache/huggingface/hub')
  t.equal(config.hfEndpoint, 'https://huggingface.co')
})

t.test('the cache directory is resolved exactly as huggingface_hub resolves it', async (t) => {
  const dir = (env: Record<string, string>): string => loadConfig({ ...base, ...env }).hubCacheDir
  t.equal(dir({}), '/home/ada/.cache/huggingface/hub', '~/.cache/huggingface/hub')
  t.equal(dir({ XDG_CACHE_HOME: '/xdg' }), '/xdg/huggingface/hub', '$XDG_CACHE_HOME/huggingface/hub')
  t.equal(dir({ XDG_CACHE_HOME: '/xdg', HF_HOME: '/data/hf' }), '/data/hf/hub', '$HF_HOME/hub wins over XDG')
  t.equal(dir({ HF_HOME: '/data/hf', HUGGINGFACE_HUB_CACHE: '/legacy' }), '/legacy', 'legacy HUGGINGFACE_HUB_CACHE wins over HF_HOME')
  t.equal(dir({ HF_HOME: '/data/hf', HUGGINGFACE_HUB_CACHE: '/legacy', HF_HUB_CACHE: '/models' }), '/models', 'HF_HUB_CACHE wins over all')
  t.equal(dir({ HF_HUB_CACHE: '~/models' }), join('/home/ada', 'models'), '~ expands to HOME')
  t.equal(dir({ HF_HOME: '~' }), '/home/ada/hub')
  // eslint-disable-next-line no-template-curly-in-string -- ${VAR} as written in an env value, which loadConfig expands
  t.equal(dir({ VOLUME: '/mnt/big', HF_HUB_CACHE: '$VOLUME/hub/${VOLUME}' }), '/mnt/big/hub//mnt/big', '$VAR and ${VAR} expand')
  t.equal(dir({ HF_HUB_CACHE: '/x/$UNKNOWN_VAR/hub' }), '/x/$UNKNOWN_VAR/hub', 'unknown variables stay as written')
})

t.test('STATE_DIR: modeldepot\'s own files go in the HF home, or beside a cache set alone, never inside the cache', async (t) => {
  const dirs = (env: Record<string, string>): [string, string] => {
    const config = loadConfig({ ...base, ...env })
    return [config.hubCacheDir, config.stateDir]
  }
  t.same(dirs({}), ['/home/ada/.cache/huggingface/hub', '/home/ada/.cache/huggingface/modeldepot'], 'in the derived HF home')
  t.same(dirs({ XDG_CACHE_HOME: '/xdg' }), ['/xdg/huggingface/hub', '/xdg/huggingface/modeldepot'], 'in the HF home under XDG')
  t.same(dirs({ HF_HOME: '/data/hf' }), ['/data/hf/hub', '/data/hf/modeldepot'], '$HF_HOME/modeldepot')
  t.same(dirs({ HF_HOME: '/data/hf', HF_HUB_CACHE: '/models/hub' }), ['/models/hub', '/data/hf/modeldepot'], 'HF_HOME set: there, even with the cache elsewhere')
  t.same(dirs({ HF_HUB_CACHE: '/models/hub' }), ['/models/hub', '/models/modeldepot'], 'HF_HUB_CACHE alone: beside the cache')
  t.same(dirs({ HUGGINGFACE_HUB_CACHE: '/legacy/hub' }), ['/legacy/hub', '/legacy/modeldepot'], 'the legacy name alone: beside the cache too')
  t.same(dirs({ HF_HUB_CACHE: '/models/hub', STATE_DIR: '~/md-state' }), ['/models/hub', '/home/ada/md-state'], 'STATE_DIR wins, ~ expanded')
  t.equal(dirs({ VOLUME: '/mnt', STATE_DIR: '$VOLUME/state' })[1], '/mnt/state', '$VARS expand')
})

t.test('HF_ENDPOINT loses its trailing slash, as in huggingface_hub', async (t) => {
  t.equal(loadConfig({ ...base, HF_ENDPOINT: 'http://127.0.0.1:9000/' }).hfEndpoint, 'http://127.0.0.1:9000')
})

t.test('TRUST_PROXY takes true, false, a hop count or addresses', async (t) => {
  t.equal(loadConfig({ ...base, TRUST_PROXY: 'true' }).trustProxy, true)
  t.equal(loadConfig({ ...base, TRUST_PROXY: '2' }).trustProxy, 2)
  t.same(loadConfig({ ...base, TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).trustProxy, ['10.0.0.0/8', '127.0.0.1'])
})

t.test('secrets: every API key and every *_TOKEN / *_KEY value, whatever the provider', async (t) => {
  const config = loadConfig({ ...base, API_KEY: 'first-key,second-key', HF_TOKEN: 'hf_abcdef', OPENROUTER_API_KEY: 'sk-or-123', SHORT_KEY: 'ab' })
  for (const secret of ['first-key', 'second-key', 'first-key,second-key', 'hf_abcdef', 'sk-or-123']) {
    t.ok(config.secrets.includes(secret), secret)
  }
  t.notOk(config.secrets.includes('ab'), 'values too short to be secrets are left alone')
})

t.test('REDIS_URL: redis:// or rediss://, with a database number at most; the password is a secret, never echoed', async (t) => {
  for (const url of ['redis://127.0.0.1:6379', 'redis://cache', 'rediss://user:p%40ss-word@redis.example:6380/2', 'redis://:pw-1234@localhost/0']) {
    t.equal(loadConfig({ ...base, REDIS_URL: url }).redis.url, url, url)
  }
  t.equal(loadConfig({ ...base, REDIS_KEY_PREFIX: 'cluster-b:' }).redis.keyPrefix, 'cluster-b:')
  for (const url of ['http://127.0.0.1:6379', 'not a url', 'redis://:hunter2-secret@host/cache', 'redis://h:1/0?password=hunter2-secret']) {
    const err = t.throws(() => loadConfig({ ...base, REDIS_URL: url }), ConfigError, url) as unknown as Error
    t.match(err.message, /^REDIS_URL is invalid: .*expected redis:\/\/\[user:password@\]host:port\[\/db\], or rediss:\/\/ for TLS$/)
    t.notMatch(err.message, /hunter2/, 'the value is not echoed')
  }
  t.throws(() => loadConfig({ ...base, REDIS_KEY_PREFIX: 'has space' }), { message: /^REDIS_KEY_PREFIX is invalid/ })
  t.equal(loadConfig({ ...base, JOB_LEASE_MS: '4000' }).redis.jobLeaseMs, 4000)
  t.throws(() => loadConfig({ ...base, JOB_LEASE_MS: '500' }), { message: /^JOB_LEASE_MS is invalid: expected milliseconds, 1000-600000/ })
  const config = loadConfig({ ...base, REDIS_URL: 'rediss://user:p%40ss-word@redis.example:6380/2' })
  t.ok(config.secrets.includes('p@ss-word') && config.secrets.includes('p%40ss-word'), 'the password, as written and decoded')
  t.equal(maskedRedisUrl('rediss://user:p%40ss-word@redis.example:6380/2'), 'rediss://user:****@redis.example:6380/2')
  t.equal(maskedRedisUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379')
})

t.test('PROVIDERS_FILE adds OpenAI-compatible providers; a bad entry names the entry and the field', async (t) => {
  const dir = t.testdir({
    'good.json': JSON.stringify([
      { name: 'local-vllm', base_url: 'http://vllm:8000/v1/', token_env: 'VLLM_KEY', priority: 50, limiter: { max_concurrent: 2, min_time_ms: 5 } },
      { name: 'openai', priority: 1 }
    ]),
    'bad-url.json': JSON.stringify([{ name: 'ok-one', base_url: 'http://a/v1' }, { name: 'broken', base_url: 'not a url' }]),
    'bad-limiter.json': JSON.stringify([{ name: 'x', base_url: 'http://a/v1', limiter: { max_concurrent: 0 } }]),
    'not-json.json': '{',
    'misspelt.json': JSON.stringify([{ name: 'x', base_url: 'http://a/v1', priorty: 3 }]),
    'twice.json': JSON.stringify([{ name: 'x', base_url: 'http://a/v1' }, { name: 'x', base_url: 'http://b/v1' }]),
    'unset-token.json': JSON.stringify([{ name: 'needs-key', base_url: 'http://a/v1', token_env: 'NOT_SET_KEY' }])
  })
  const config = loadConfig({ ...base, PROVIDERS_FILE: `${dir}/good.json`, VLLM_KEY: 'vllm-secret' })
  const local = config.providers.find((provider) => provider.name === 'local-vllm')
  t.match(local, { kind: 'openai', baseUrl: 'http://vllm:8000/v1', token: 'vllm-secret', priority: 50, limiter: { maxConcurrent: 2, minTime: 5 } })
  t.equal(config.providers.find((provider) => provider.name === 'openai')?.priority, 1, 'a built-in can be re-prioritised')
  t.throws(() => loadConfig({ ...base, PROVIDERS_FILE: `${dir}/bad-url.json` }), {
    name: 'ConfigError',
    message: 'PROVIDERS_FILE entry 1 ("broken"): base_url must be an http(s) URL without credentials in it'
  })
  t.throws(() => loadConfig({ ...base, PROVIDERS_FILE: `${dir}/bad-limiter.json` }), { message: /entry 0 \("x"\): limiter\.max_concurrent must be an integer of at least 1/ })
  t.throws(() => loadConfig({ ...base, PROVIDERS_FILE: `${dir}/not-json.json` }), { message: /cannot be read as JSON/ })
  t.throws(() => loadConfig({ ...base, PROVIDERS_FILE: `${dir}/misspelt.json` }), { message: /entry 0 \("x"\): priorty is not a known field/ })
  t.throws(() => loadConfig({ ...base, PROVIDERS_FILE: `${dir}/twice.json` }), { message: /entry 1 \("x"\): name is used by an earlier entry/ })
  const needsKey = loadConfig({ ...base, PROVIDERS_FILE: `${dir}/unset-token.json` }).providers.find((provider) => provider.name === 'needs-key')
  t.equal(needsKey?.configured, false, 'its token variable is unset: unconfigured')
  t.throws(() => loadConfig({ ...base, OPENAI_BASE_URL: 'ftp://x' }), { message: /^OPENAI_BASE_URL is invalid/ })
  t.throws(() => loadConfig({ ...base, OPENAI_BASE_URL: 'https://user:secret@llm.local/v1' }), { message: /^OPENAI_BASE_URL is invalid: put the token in its own setting/ })
})
