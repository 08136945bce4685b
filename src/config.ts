import { homedir } from 'node:os'
import envSchema from 'env-schema'
import { Type } from './type-builder.js'
import type { Static } from 'typebox'
import { resolveHubCacheDir, resolveStateDir } from './cache/cache-dir.js'
import type { CallbackSettings } from './callbacks/callback-sender.js'
import { parseAllowedHosts, type AllowedHost } from './callbacks/callback-url.js'
import type { DownloadSettings } from './downloads/download-settings.js'
import type { JournalSettings } from './downloads/job-journal.js'
import { validateRepoId } from './hub/repo-id.js'
import type { ServerTimeouts } from './server-timeouts.js'
import { MAX_BYTES_PER_S_MIN } from './downloads/byte-rate.js'
import { proxySecrets, ProxySettingError, readProxySettings, type ProxySettings } from './outbound/proxy-settings.js'
import { apiKeyEntries, type ApiKeyEntry } from './auth/api-keys.js'
import { ApiKeysFileError, readApiKeysFile, type ApiKeysFile } from './auth/api-keys-file.js'
import type { CacheQuotaSettings } from './cache/eviction.js'
import { builtInProviders, ProvidersFileError, readProvidersFile, type ProviderDefinition } from './providers/provider-definitions.js'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

// Each description doubles as the "what is expected" part of a start-up error.
export const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8787, description: 'a TCP port, 0-65535 (0 picks a free one)' }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'an interface address such as 0.0.0.0 or 127.0.0.1' }),
  LOG_LEVEL: Type.String({ enum: [...LOG_LEVELS], default: 'info', description: `one of ${LOG_LEVELS.join(', ')}` }),
  TRUST_PROXY: Type.String({ default: 'false', description: 'true, false, a hop count, or comma-separated proxy addresses/CIDRs' }),
  API_KEY: Type.Optional(Type.String({ description: 'one key or several, comma-separated' })),
  API_KEYS_FILE: Type.Optional(Type.String({ description: 'the path of a JSON file of named API keys with scopes' })),
  AUTH_DISABLED: Type.Boolean({ default: false, description: 'true or false' }),
  RATE_LIMIT_PER_MINUTE: Type.Integer({ minimum: 1, default: 60, description: 'a whole number of requests per minute, at least 1' }),
  DOCS_PUBLIC: Type.Boolean({ default: true, description: 'true or false' }),
  METRICS_PUBLIC: Type.Boolean({ default: false, description: 'true or false' }),
  HF_TOKEN: Type.Optional(Type.String({ description: 'a Hugging Face access token' })),
  HF_ENDPOINT: Type.String({ default: 'https://huggingface.co', description: 'an http(s) URL' }),
  HF_HUB_CACHE: Type.Optional(Type.String({ description: 'a directory path' })),
  HUGGINGFACE_HUB_CACHE: Type.Optional(Type.String({ description: 'a directory path (legacy name of HF_HUB_CACHE)' })),
  HF_HOME: Type.Optional(Type.String({ description: 'a directory path' })),
  STATE_DIR: Type.Optional(Type.String({ description: 'a directory path' })),
  XDG_CACHE_HOME: Type.Optional(Type.String({ description: 'a directory path' })),
  HOME: Type.Optional(Type.String({ description: 'the home directory' })),
  DEFAULT_MODEL: Type.Optional(Type.String({ description: 'a Hub model id such as org/name' })),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 10000, description: 'milliseconds, 0 or more' }),
  HEALTH_CHECK_INTERVAL_MS: Type.Integer({ minimum: 10, default: 5000, description: 'milliseconds, at least 10' }),
  JOB_HISTORY_MAX: Type.Integer({ minimum: 0, default: 100, description: 'a number of finished jobs, 0 or more' }),
  JOB_HISTORY_MAX_AGE_S: Type.Integer({ minimum: 0, default: 604800, description: 'seconds, 0 or more' }),
  EVENT_STREAMS_MAX: Type.Integer({ minimum: 1, default: 100, description: 'a number of open streams, at least 1' }),
  EVENT_STREAM_HEARTBEAT_MS: Type.Integer({ minimum: 1000, default: 15000, description: 'milliseconds, at least 1000' }),
  CALLBACK_ALLOWED_HOSTS: Type.Optional(Type.String({ description: 'comma-separated host names or host:port' })),
  CALLBACK_SECRET: Type.Optional(Type.String({ description: 'a secret to sign callbacks with' })),
  CALLBACK_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 10000, description: 'milliseconds, at least 1' }),
  CALLBACK_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 20, default: 5, description: 'a number of attempts, 1-20' }),
  CALLBACK_RETRY_BASE_MS: Type.Integer({ minimum: 0, default: 8000, description: 'milliseconds, 0 or more' }),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 30000, description: 'milliseconds, at least 1' }),
  HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 10000, description: 'milliseconds, at least 1' }),
  KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 72000, description: 'milliseconds, at least 1' }),
  CONNECTION_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 120000, description: 'milliseconds, at least 1' }),
  MAX_CONCURRENT_DOWNLOADS: Type.Integer({ minimum: 1, maximum: 32, default: 2, description: 'a number of jobs, 1-32' }),
  DOWNLOAD_FILE_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 64, default: 8, description: 'a number of files, 1-64' }),
  DOWNLOAD_PART_SIZE_MB: Type.Integer({ minimum: 1, default: 16, description: 'MiB, at least 1' }),
  DOWNLOAD_CONNECTIONS_PER_FILE: Type.Integer({ minimum: 1, maximum: 64, default: 8, description: 'a number of connections, 1-64' }),
  DOWNLOAD_MAX_CONNECTIONS: Type.Integer({ minimum: 1, maximum: 256, default: 16, description: 'a number of connections, 1-256' }),
  DOWNLOAD_READ_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 10000, description: 'milliseconds, at least 1' }),
  DOWNLOAD_RETRIES: Type.Integer({ minimum: 0, maximum: 100, default: 5, description: 'a number of retries, 0-100' }),
  DOWNLOAD_RETRY_BASE_MS: Type.Integer({ minimum: 0, default: 1000, description: 'milliseconds, 0 or more' }),
  DOWNLOAD_RETRY_MAX_MS: Type.Integer({ minimum: 0, default: 30000, description: 'milliseconds, 0 or more' }),
  DOWNLOAD_MAX_BYTES_PER_S: Type.Integer({ minimum: 0, default: 0, description: 'bytes per second: 0 for no cap, else at least 65536' }),
  OPENROUTER_API_KEY: Type.Optional(Type.String({ description: 'an OpenRouter API key' })),
  OPENROUTER_BASE_URL: Type.Optional(Type.String({ description: 'an http(s) URL' })),
  OPENAI_API_KEY: Type.Optional(Type.String({ description: 'an API key for OpenAI or an OpenAI-compatible server' })),
  OPENAI_BASE_URL: Type.Optional(Type.String({ description: 'an http(s) URL' })),
  PROVIDERS_FILE: Type.Optional(Type.String({ description: 'the path of a JSON file of providers' })),
  PROVIDER_TOKENS_FILE: Type.Optional(Type.String({ description: 'the path of a JSON file where rotated tokens are kept' })),
  PROVIDER_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 30000, description: 'milliseconds, at least 1' }),
  CATALOGUE_TTL_S: Type.Integer({ minimum: 0, default: 300, description: 'seconds, 0 or more' }),
  PROVIDER_RATE_LIMIT_BACKOFF_MS: Type.String({ default: '120000,240000', description: 'comma-separated milliseconds, e.g. 120000,240000' }),
  PROVIDER_BLACKLIST_AFTER_429S: Type.Integer({ minimum: 1, default: 3, description: 'a number of consecutive 429s, at least 1' }),
  PROVIDER_BLACKLIST_MS: Type.Integer({ minimum: 0, default: 600000, description: 'milliseconds, 0 or more' }),
  PROVIDER_FAILURES_TO_DOWN: Type.Integer({ minimum: 1, default: 3, description: 'a number of consecutive failures, at least 1' }),
  PROVIDER_DOWN_COOLDOWN_MS: Type.Integer({ minimum: 0, default: 60000, description: 'milliseconds, 0 or more' }),
  REDIS_URL: Type.Optional(Type.String({ description: 'a redis://[user:password@]host:port[/db] or rediss:// URL' })),
  REDIS_KEY_PREFIX: Type.String({ minLength: 1, pattern: '^[\\x21-\\x7e]+$', default: 'modeldepot:', description: 'a key prefix of printable characters without spaces, e.g. modeldepot:' }),
  JOB_LEASE_MS: Type.Integer({ minimum: 1000, maximum: 600000, default: 15000, description: 'milliseconds, 1000-600000' }),
  // Read with their lower-case forms (https_proxy, http_proxy, no_proxy), which win; see proxy-settings.ts.
  HTTPS_PROXY: Type.Optional(Type.String({ description: 'the proxy for https:// addresses, e.g. http://user:password@proxy:3128' })),
  HTTP_PROXY: Type.Optional(Type.String({ description: 'the proxy for http:// addresses (and https:// ones without HTTPS_PROXY)' })),
  NO_PROXY: Type.Optional(Type.String({ description: 'comma-separated hosts reached without the proxy, e.g. localhost,127.0.0.1,.internal' })),
  CACHE_MAX_BYTES: Type.Optional(Type.Integer({ minimum: 1, description: 'a number of bytes, at least 1' })),
  CACHE_HIGH_WATERMARK: Type.Optional(Type.Integer({ minimum: 1, maximum: 99, description: 'a percentage of the disk, 1-99' })),
  CACHE_LOW_WATERMARK: Type.Optional(Type.Integer({ minimum: 1, maximum: 99, description: 'a percentage of the disk, 1-99, below CACHE_HIGH_WATERMARK' }))
})
type Env = Static<typeof EnvSchema>

export type LogLevel = (typeof LOG_LEVELS)[number]
export type TrustProxy = boolean | number | string[]

export interface ProviderSettings {
  timeoutMs: number
  catalogueTtlMs: number
  tokensFile: string | undefined
  backoff: {
    rateLimitBackoffMs: number[]
    blacklistAfter429s: number
    blacklistMs: number
    failuresToDown: number
    downCooldownMs: number
  }
}

/** Where the state several replicas share is kept; `url` undefined keeps everything in this process's memory. */
export interface RedisSettings {
  url: string | undefined
  keyPrefix: string
  /** With Redis: how long a job stays a replica's without its heartbeat, before another takes it over. */
  jobLeaseMs: number
}

export interface Config {
  port: number
  host: string
  logLevel: LogLevel
  trustProxy: TrustProxy
  apiKeys: string[]
  /** API_KEYS_FILE: its path (read again on SIGHUP) and the named, scoped keys it held at start-up. */
  apiKeysFile: { path: string, keys: ApiKeyEntry[] } | undefined
  authDisabled: boolean
  rateLimitPerMinute: number
  docsPublic: boolean
  metricsPublic: boolean
  hfToken: string | undefined
  hfEndpoint: string
  hubCacheDir: string
  /** modeldepot's own files (jobs journal, default model, blocks), outside the hub cache. */
  stateDir: string
  defaultModel: string | undefined
  shutdownTimeoutMs: number
  /** How often the cache directory's writability is checked for /health and /health/ready. */
  healthCheckIntervalMs: number
  callbacks: CallbackSettings & { allowedHosts: AllowedHost[] | undefined }
  eventStreams: { maxOpen: number, heartbeatMs: number }
  jobHistory: JournalSettings
  serverTimeouts: ServerTimeouts
  downloads: DownloadSettings
  providers: ProviderDefinition[]
  providerSettings: ProviderSettings
  redis: RedisSettings
  /** The outbound proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY): every request to the Hub, its CDN, providers and callbacks. */
  proxy: ProxySettings
  /** CACHE_MAX_BYTES and the watermarks: when a download evicts least recently used models. */
  cacheQuota: CacheQuotaSettings
  /** Every secret value the logs must never show: API keys, every *_TOKEN / *_KEY / *_SECRET setting, the Redis password. */
  secrets: string[]
}

/** A bad setting: the message is one line that names the variable and what it expects. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** DOWNLOAD_MAX_BYTES_PER_S: 0 is no cap (null); a cap below the smallest one a transfer can keep is refused. */
function parseByteRate (value: number): number | null {
  if (value === 0) return null
  if (value < MAX_BYTES_PER_S_MIN) throw new ConfigError(`DOWNLOAD_MAX_BYTES_PER_S is invalid: expected 0 (no cap) or at least ${MAX_BYTES_PER_S_MIN} bytes per second (got "${value}")`)
  return value
}

const SECRET_NAME = /(_TOKEN|_KEY|_SECRET)$/
// Values this short would turn ordinary words in the logs into [REDACTED].
const MIN_SECRET_LENGTH = 4

interface AjvError { instancePath: string, message?: string, params: Record<string, unknown> }

export function loadConfig (env: NodeJS.ProcessEnv = process.env): Config {
  const raw = withoutEmptyValues(env)
  const parsed = parseEnv(raw)
  const authDisabled = parsed.AUTH_DISABLED
  const apiKeys = parseApiKeys(parsed.API_KEY)
  const keysFile = loadApiKeysFile(parsed.API_KEYS_FILE, apiKeys)
  if (apiKeys.length === 0 && (keysFile?.entries.length ?? 0) === 0 && !authDisabled) {
    throw new ConfigError('API_KEY is missing: set one key or several, comma-separated, or API_KEYS_FILE (or AUTH_DISABLED=true to run without authentication on purpose)')
  }
  const redisUrl = parseRedisUrl(parsed.REDIS_URL)
  const proxy = parseProxy(raw)
  return {
    port: parsed.PORT,
    host: parsed.HOST,
    logLevel: parsed.LOG_LEVEL as LogLevel,
    trustProxy: parseTrustProxy(parsed.TRUST_PROXY),
    apiKeys,
    apiKeysFile: keysFile === undefined ? undefined : { path: keysFile.path, keys: keysFile.entries },
    authDisabled,
    rateLimitPerMinute: parsed.RATE_LIMIT_PER_MINUTE,
    docsPublic: parsed.DOCS_PUBLIC,
    metricsPublic: parsed.METRICS_PUBLIC,
    hfToken: parsed.HF_TOKEN,
    hfEndpoint: parseEndpoint(parsed.HF_ENDPOINT),
    hubCacheDir: resolveHubCacheDir({ ...raw, ...parsed, HOME: parsed.HOME ?? homedir() }),
    stateDir: resolveStateDir({ ...raw, ...parsed, HOME: parsed.HOME ?? homedir() }),
    defaultModel: parseDefaultModel(parsed.DEFAULT_MODEL),
    shutdownTimeoutMs: parsed.SHUTDOWN_TIMEOUT_MS,
    healthCheckIntervalMs: parsed.HEALTH_CHECK_INTERVAL_MS,
    eventStreams: { maxOpen: parsed.EVENT_STREAMS_MAX, heartbeatMs: parsed.EVENT_STREAM_HEARTBEAT_MS },
    jobHistory: { historyMax: parsed.JOB_HISTORY_MAX, historyMaxAgeMs: parsed.JOB_HISTORY_MAX_AGE_S * 1000 },
    callbacks: {
      allowedHosts: parseCallbackHosts(parsed.CALLBACK_ALLOWED_HOSTS),
      secret: parsed.CALLBACK_SECRET,
      timeoutMs: parsed.CALLBACK_TIMEOUT_MS,
      maxAttempts: parsed.CALLBACK_MAX_ATTEMPTS,
      retryBaseMs: parsed.CALLBACK_RETRY_BASE_MS
    },
    serverTimeouts: parseServerTimeouts(parsed),
    downloads: {
      maxConcurrentJobs: parsed.MAX_CONCURRENT_DOWNLOADS,
      fileConcurrency: parsed.DOWNLOAD_FILE_CONCURRENCY,
      partSizeBytes: parsed.DOWNLOAD_PART_SIZE_MB * 1024 * 1024,
      connectionsPerFile: parsed.DOWNLOAD_CONNECTIONS_PER_FILE,
      maxConnectionsPerJob: parsed.DOWNLOAD_MAX_CONNECTIONS,
      readTimeoutMs: parsed.DOWNLOAD_READ_TIMEOUT_MS,
      retry: { retries: parsed.DOWNLOAD_RETRIES, baseMs: parsed.DOWNLOAD_RETRY_BASE_MS, maxMs: parsed.DOWNLOAD_RETRY_MAX_MS },
      maxBytesPerS: parseByteRate(parsed.DOWNLOAD_MAX_BYTES_PER_S)
    },
    providers: loadProviders(raw, parsed),
    providerSettings: {
      timeoutMs: parsed.PROVIDER_TIMEOUT_MS,
      catalogueTtlMs: parsed.CATALOGUE_TTL_S * 1000,
      tokensFile: parsed.PROVIDER_TOKENS_FILE,
      backoff: {
        rateLimitBackoffMs: parseDurations(parsed.PROVIDER_RATE_LIMIT_BACKOFF_MS),
        blacklistAfter429s: parsed.PROVIDER_BLACKLIST_AFTER_429S,
        blacklistMs: parsed.PROVIDER_BLACKLIST_MS,
        failuresToDown: parsed.PROVIDER_FAILURES_TO_DOWN,
        downCooldownMs: parsed.PROVIDER_DOWN_COOLDOWN_MS
      }
    },
    redis: { url: redisUrl, keyPrefix: parsed.REDIS_KEY_PREFIX, jobLeaseMs: parsed.JOB_LEASE_MS },
    proxy,
    cacheQuota: parseCacheQuota(parsed),
    secrets: [
      ...collectSecrets(env, [...apiKeys, ...keysFile?.plainKeys ?? []]),
      ...redisSecrets(redisUrl),
      ...proxySecrets(proxy).filter((secret) => secret.length >= MIN_SECRET_LENGTH)
    ]
  }
}

// `FOO=` in a .env file means "not set", as a user reading .env.example would expect.
function withoutEmptyValues (env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value.trim() !== '') out[name] = value.trim()
  }
  return out
}

function parseEnv (env: Record<string, string>): Env {
  try {
    return envSchema<Env>({ schema: EnvSchema, data: env, env: false })
  } catch (err) {
    const first = (err as { errors?: AjvError[] }).errors?.[0]
    if (first === undefined) throw err
    const name = first.instancePath.replace(/^\//, '')
    const expected = (EnvSchema.properties as Record<string, { description?: string }>)[name]?.description
    const shown = SECRET_NAME.test(name) ? '' : ` (got "${env[name] ?? ''}")`
    throw new ConfigError(`${name} is invalid: expected ${expected ?? first.message ?? 'a valid value'}${shown}`)
  }
}

function loadProviders (raw: Record<string, string>, parsed: Env): ProviderDefinition[] {
  for (const name of ['OPENROUTER_BASE_URL', 'OPENAI_BASE_URL'] as const) {
    const value = parsed[name]
    if (value !== undefined) parseUrl(name, value)
  }
  const builtIns = builtInProviders(raw, parseEndpoint(parsed.HF_ENDPOINT))
  if (parsed.PROVIDERS_FILE === undefined) return builtIns
  try {
    return readProvidersFile(parsed.PROVIDERS_FILE, raw, builtIns)
  } catch (err) {
    if (err instanceof ProvidersFileError) throw new ConfigError(err.message)
    throw err
  }
}

function parseServerTimeouts (parsed: Env): ServerTimeouts {
  // Past the request deadline the headers deadline would never be the one that fires.
  if (parsed.HEADERS_TIMEOUT_MS > parsed.REQUEST_TIMEOUT_MS) {
    throw new ConfigError(`HEADERS_TIMEOUT_MS is invalid: expected at most REQUEST_TIMEOUT_MS (${parsed.REQUEST_TIMEOUT_MS}) (got "${parsed.HEADERS_TIMEOUT_MS}")`)
  }
  return {
    requestMs: parsed.REQUEST_TIMEOUT_MS,
    headersMs: parsed.HEADERS_TIMEOUT_MS,
    keepAliveMs: parsed.KEEP_ALIVE_TIMEOUT_MS,
    connectionMs: parsed.CONNECTION_TIMEOUT_MS
  }
}

function parseDurations (value: string): number[] {
  const durations = value.split(',').map((part) => part.trim())
  if (durations.length === 0 || !durations.every((part) => /^\d+$/.test(part))) {
    throw new ConfigError(`PROVIDER_RATE_LIMIT_BACKOFF_MS is invalid: expected comma-separated milliseconds, e.g. 120000,240000 (got "${value}")`)
  }
  return durations.map(Number)
}

function parseDefaultModel (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  try {
    return validateRepoId(value, 'DEFAULT_MODEL')
  } catch (err) {
    throw new ConfigError(`DEFAULT_MODEL is invalid: ${(err as Error).message}`)
  }
}

function parseApiKeys (value: string | undefined): string[] {
  const keys = (value ?? '').split(',').map((key) => key.trim()).filter((key) => key !== '')
  if (keys.some((key) => !/^[\x21-\x7e]+$/.test(key))) {
    throw new ConfigError('API_KEY is invalid: expected keys of printable ASCII characters without spaces, separated by commas')
  }
  return [...new Set(keys)]
}

function loadApiKeysFile (path: string | undefined, apiKeys: string[]): (ApiKeysFile & { path: string }) | undefined {
  if (path === undefined) return undefined
  try {
    return { path, ...readApiKeysFile(path, apiKeyEntries(apiKeys)) }
  } catch (err) {
    if (err instanceof ApiKeysFileError) throw new ConfigError(err.message)
    throw err
  }
}

function parseTrustProxy (value: string): TrustProxy {
  if (value === 'true') return true
  if (value === 'false') return false
  if (/^\d+$/.test(value)) return Number(value)
  const entries = value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
  if (entries.length === 0 || entries.some((entry) => !/^[0-9a-fA-F.:/]+$|^(loopback|linklocal|uniquelocal)$/.test(entry))) {
    throw new ConfigError(`TRUST_PROXY is invalid: expected true, false, a hop count, or comma-separated proxy addresses/CIDRs (got "${value}")`)
  }
  return entries
}

// huggingface_hub strips the trailing slash too, so paths are joined the same way.
const parseEndpoint = (value: string): string => parseUrl('HF_ENDPOINT', value)

function parseUrl (name: string, value: string): string {
  let url: URL | undefined
  try {
    url = new URL(value)
  } catch { /* reported below */ }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new ConfigError(`${name} is invalid: expected an http(s) URL (got "${value}")`)
  }
  // Credentials in a URL would show in every answer and log line that names the address.
  if (url.username !== '' || url.password !== '') throw new ConfigError(`${name} is invalid: put the token in its own setting, not in the URL`)
  return value.replace(/\/+$/, '')
}

// The URL is never echoed back: it may carry the Redis password.
function parseRedisUrl (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  let url: URL | undefined
  try {
    url = new URL(value)
  } catch { /* reported below */ }
  const expected = 'expected redis://[user:password@]host:port[/db], or rediss:// for TLS'
  if (url === undefined || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
    throw new ConfigError(`REDIS_URL is invalid: ${expected}`)
  }
  if (!/^\/?\d*$/.test(url.pathname) || url.search !== '' || url.hash !== '') {
    throw new ConfigError(`REDIS_URL is invalid: the path can only be a database number; ${expected}`)
  }
  return value
}

function redisSecrets (value: string | undefined): string[] {
  if (value === undefined) return []
  const { password } = new URL(value)
  if (password === '') return []
  let decoded = password
  try {
    decoded = decodeURIComponent(password)
  } catch { /* a stray % stays as written */ }
  return [...new Set([password, decoded])].filter((secret) => secret.length >= MIN_SECRET_LENGTH)
}

/** The Redis URL as it may be shown: the password, if any, replaced by ****. */
export function maskedRedisUrl (value: string): string {
  const url = new URL(value)
  if (url.password !== '') url.password = '****'
  return url.toString()
}

function collectSecrets (env: NodeJS.ProcessEnv, apiKeys: string[]): string[] {
  const values = new Set<string>(apiKeys)
  for (const [name, value] of Object.entries(env)) {
    if (!SECRET_NAME.test(name) || value === undefined) continue
    values.add(value.trim())
    for (const part of value.split(',')) values.add(part.trim())
  }
  return [...values].filter((value) => value.length >= MIN_SECRET_LENGTH)
}

function parseCallbackHosts (value: string | undefined): AllowedHost[] | undefined {
  try {
    return parseAllowedHosts(value)
  } catch (err) {
    throw new ConfigError(`CALLBACK_ALLOWED_HOSTS is invalid: ${(err as Error).message}; expected comma-separated host names or host:port, e.g. n8n:5678`)
  }
}

function parseProxy (raw: Record<string, string>): ProxySettings {
  try {
    return readProxySettings(raw)
  } catch (err) {
    if (err instanceof ProxySettingError) throw new ConfigError(err.message)
    throw err
  }
}

// The watermarks come as a pair (GPUStack's 80 and 70): past the high one, evict until under the low one.
function parseCacheQuota (parsed: Env): CacheQuotaSettings {
  const high = parsed.CACHE_HIGH_WATERMARK
  const low = parsed.CACHE_LOW_WATERMARK
  if ((high === undefined) !== (low === undefined)) {
    const missing = high === undefined ? 'CACHE_HIGH_WATERMARK' : 'CACHE_LOW_WATERMARK'
    throw new ConfigError(`${missing} is missing: set CACHE_HIGH_WATERMARK and CACHE_LOW_WATERMARK together (e.g. 80 and 70), or neither`)
  }
  if (high !== undefined && low !== undefined && low >= high) {
    throw new ConfigError(`CACHE_LOW_WATERMARK is invalid: expected below CACHE_HIGH_WATERMARK (${high}) (got "${low}")`)
  }
  return { maxBytes: parsed.CACHE_MAX_BYTES, highWatermarkPercent: high, lowWatermarkPercent: low }
}
