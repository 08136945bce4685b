import { readFileSync } from 'node:fs'
import { Type } from '../type-builder.js'
import type { Static } from 'typebox'

export const ProviderKindSchema = Type.Union([Type.Literal('huggingface'), Type.Literal('openrouter'), Type.Literal('openai')])
export type ProviderKind = Static<typeof ProviderKindSchema>

export interface LimiterSettings {
  /** Calls in flight at once. */
  maxConcurrent: number
  /** Milliseconds between two call starts. */
  minTime: number
}

/** A provider as configured: where it is, which setting holds its token, how it is rationed. */
export interface ProviderDefinition {
  name: string
  kind: ProviderKind
  baseUrl: string
  /** The environment variable that holds the token (shown, never its value). */
  tokenEnv: string
  token: string | undefined
  priority: number
  limiter: LimiterSettings
  /** Whether calls can be made at all: a token is set, or none is needed. */
  configured: boolean
}

/** A bad PROVIDERS_FILE entry: the message names the entry and the field. */
export class ProvidersFileError extends Error {
  override name = 'ProvidersFileError'
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/
const ENTRY_FIELDS = new Set(['name', 'base_url', 'token_env', 'priority', 'limiter'])

/** The three built-in providers, from the environment. */
export function builtInProviders (env: Record<string, string | undefined>, hfEndpoint: string): ProviderDefinition[] {
  const openaiUrl = env.OPENAI_BASE_URL
  return [
    // Public models need no token, so the Hub is usable without one.
    {
      name: 'huggingface',
      kind: 'huggingface',
      baseUrl: hfEndpoint,
      tokenEnv: 'HF_TOKEN',
      token: env.HF_TOKEN,
      priority: 30,
      limiter: { maxConcurrent: 8, minTime: 0 },
      configured: true
    },
    {
      name: 'openrouter',
      kind: 'openrouter',
      baseUrl: trimUrl(env.OPENROUTER_BASE_URL ?? 'https://openrouter.ai/api/v1'),
      tokenEnv: 'OPENROUTER_API_KEY',
      token: env.OPENROUTER_API_KEY,
      priority: 20,
      limiter: { maxConcurrent: 4, minTime: 100 },
      configured: env.OPENROUTER_API_KEY !== undefined
    },
    // A local OpenAI-compatible server (vLLM, Ollama, LM Studio) often needs no key: its URL is enough.
    {
      name: 'openai',
      kind: 'openai',
      baseUrl: trimUrl(openaiUrl ?? 'https://api.openai.com/v1'),
      tokenEnv: 'OPENAI_API_KEY',
      token: env.OPENAI_API_KEY,
      priority: 10,
      limiter: { maxConcurrent: 4, minTime: 100 },
      configured: env.OPENAI_API_KEY !== undefined || openaiUrl !== undefined
    }
  ]
}

/**
 * More OpenAI-compatible providers from PROVIDERS_FILE: a JSON array of
 * `{ name, base_url, token_env?, priority?, limiter?: { max_concurrent?, min_time_ms? } }`.
 * An entry named like a built-in changes that one's priority and limiter.
 */
export function readProvidersFile (path: string, env: Record<string, string | undefined>, builtIns: ProviderDefinition[]): ProviderDefinition[] {
  let entries: unknown
  try {
    entries = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new ProvidersFileError(`PROVIDERS_FILE ${path} cannot be read as JSON (${(err as Error).message})`)
  }
  if (!Array.isArray(entries)) throw new ProvidersFileError('PROVIDERS_FILE must hold a JSON array of provider entries')
  const providers = builtIns.map((provider) => ({ ...provider, limiter: { ...provider.limiter } }))
  const seen = new Set<string>()
  entries.forEach((entry: unknown, index) => {
    const where = `PROVIDERS_FILE entry ${index}`
    if (typeof entry !== 'object' || entry === null) throw new ProvidersFileError(`${where} must be an object`)
    const fields = entry as Record<string, unknown>
    const name = fields.name
    if (typeof name !== 'string' || !NAME.test(name)) throw new ProvidersFileError(`${where}: name must be 1-32 lowercase letters, digits, "-" or "_"`)
    const field = (key: string, problem: string): ProvidersFileError => new ProvidersFileError(`${where} ("${name}"): ${key} ${problem}`)
    // A misspelt field would otherwise be ignored without a word.
    const unknown = Object.keys(fields).find((key) => !ENTRY_FIELDS.has(key))
    if (unknown !== undefined) throw field(unknown, `is not a known field (expected ${[...ENTRY_FIELDS].join(', ')})`)
    if (seen.has(name)) throw field('name', 'is used by an earlier entry')
    seen.add(name)
    const existing = providers.find((provider) => provider.name === name)
    const priority = fields.priority ?? existing?.priority ?? 0
    if (typeof priority !== 'number' || !Number.isInteger(priority)) throw field('priority', 'must be an integer')
    const limiter = parseLimiter(fields.limiter, existing?.limiter ?? { maxConcurrent: 4, minTime: 100 }, field)
    if (existing !== undefined) {
      if (fields.base_url !== undefined || fields.token_env !== undefined) {
        throw field('base_url', 'and token_env of a built-in provider come from its own settings (e.g. OPENAI_BASE_URL, OPENAI_API_KEY)')
      }
      existing.priority = priority
      existing.limiter = limiter
      return
    }
    const baseUrl = fields.base_url
    if (typeof baseUrl !== 'string' || !isHttpUrl(baseUrl)) throw field('base_url', 'must be an http(s) URL without credentials in it')
    const tokenEnv = fields.token_env
    if (tokenEnv !== undefined && (typeof tokenEnv !== 'string' || !/^[A-Z_][A-Z0-9_]*$/.test(tokenEnv))) throw field('token_env', 'must be the name of an environment variable, e.g. "MY_LLM_API_KEY"')
    const token = tokenEnv === undefined ? undefined : env[tokenEnv]
    // No token_env: a keyless server. A token_env whose variable is unset: not configured yet.
    providers.push({ name, kind: 'openai', baseUrl: trimUrl(baseUrl), tokenEnv: tokenEnv ?? '', token, priority, limiter, configured: tokenEnv === undefined || token !== undefined })
  })
  return providers
}

function parseLimiter (value: unknown, fallback: LimiterSettings, field: (key: string, problem: string) => Error): LimiterSettings {
  if (value === undefined) return fallback
  if (typeof value !== 'object' || value === null) throw field('limiter', 'must be an object with max_concurrent and min_time_ms')
  const { max_concurrent: maxConcurrent = fallback.maxConcurrent, min_time_ms: minTime = fallback.minTime } = value as Record<string, unknown>
  if (typeof maxConcurrent !== 'number' || !Number.isInteger(maxConcurrent) || maxConcurrent < 1) throw field('limiter.max_concurrent', 'must be an integer of at least 1')
  if (typeof minTime !== 'number' || !Number.isInteger(minTime) || minTime < 0) throw field('limiter.min_time_ms', 'must be an integer of at least 0')
  return { maxConcurrent, minTime }
}

const trimUrl = (url: string): string => url.replace(/\/+$/, '')

function isHttpUrl (value: string): boolean {
  try {
    const url = new URL(value)
    // No credentials in the URL: they would show wherever the address is shown.
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === ''
  } catch {
    return false
  }
}
