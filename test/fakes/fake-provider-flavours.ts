import { STATUS_CODES } from 'node:http'
import { FAKE_DATE } from './fake-hub-repo.js'

// What OpenRouter and an OpenAI-compatible server answer, field for field: model lists, OpenRouter's
// key info, and each one's error body. The server mechanics live in fake-providers.ts.

export interface FakeModel { id: string, name?: string, context_length?: number }

/** What the Authorization header amounted to; only a Bearer token counts. */
export type Auth = { kind: 'missing' } | { kind: 'invalid' | 'valid', token: string }

export interface Answer { status: number, body: unknown }

export interface Flavour {
  /** Where the API lives on the server: what OPENROUTER_BASE_URL / OPENAI_BASE_URL point at. */
  basePath: string
  defaultModels: FakeModel[]
  /** The unscripted answer to `method path`, path relative to basePath (undefined when outside it). */
  answer: (method: string, path: string | undefined, auth: Auth, models: FakeModel[], fullPath: string) => Answer
  /** The flavour's error body for a status, as a scripted 4xx/5xx without a body gets it. */
  error: (status: number, auth: Auth, method: string, fullPath: string) => unknown
}

/** Unix seconds, fixed like every date the fakes report. */
const CREATED = Math.floor(Date.parse(FAKE_DATE) / 1000)

export const openRouter: Flavour = {
  basePath: '/api/v1',
  defaultModels: [
    { id: 'openai/gpt-4o-mini', name: 'OpenAI: GPT-4o-mini', context_length: 128_000 },
    { id: 'meta-llama/llama-3.1-8b-instruct', name: 'Meta: Llama 3.1 8B Instruct', context_length: 131_072 }
  ],
  answer (method, path, auth, models) {
    // The model list is public, and a token sent with it is not even checked, as on openrouter.ai.
    if (method === 'GET' && path === '/models') return { status: 200, body: { data: models.map(openRouterModel) } }
    if (method === 'GET' && path === '/key') {
      if (auth.kind !== 'valid') return { status: 401, body: this.error(401, auth, method, '') }
      return { status: 200, body: { data: openRouterKey(auth.token) } }
    }
    return { status: 404, body: this.error(404, auth, method, '') }
  },
  error (status, auth) {
    return { error: { code: status, message: openRouterMessage(status, auth) } }
  }
}

export const openAI: Flavour = {
  basePath: '/v1',
  defaultModels: [{ id: 'gpt-4o-mini' }, { id: 'text-embedding-3-small' }],
  answer (method, path, auth, models, fullPath) {
    if (method === 'GET' && path === '/models') {
      if (auth.kind !== 'valid') return { status: 401, body: this.error(401, auth, method, fullPath) }
      return { status: 200, body: { object: 'list', data: models.map((m) => ({ id: m.id, object: 'model', created: CREATED, owned_by: 'system' })) } }
    }
    return { status: 404, body: this.error(404, auth, method, fullPath) }
  },
  error (status, auth, method, fullPath) {
    return { error: { param: null, ...openAIError(status, auth, method, fullPath) } }
  }
}

function openRouterModel (model: FakeModel): Record<string, unknown> {
  const contextLength = model.context_length ?? 8192
  const name = model.name ?? model.id
  return {
    id: model.id,
    canonical_slug: model.id,
    hugging_face_id: '',
    name,
    created: CREATED,
    description: `${name}, served by a fake OpenRouter.`,
    context_length: contextLength,
    architecture: { modality: 'text->text', input_modalities: ['text'], output_modalities: ['text'], tokenizer: 'Other', instruct_type: null },
    // Prices are USD per token, as decimal strings.
    pricing: { prompt: '0.00000015', completion: '0.0000006', request: '0', image: '0', web_search: '0', internal_reasoning: '0' },
    top_provider: { context_length: contextLength, max_completion_tokens: null, is_moderated: false },
    per_request_limits: null,
    supported_parameters: ['max_tokens', 'temperature', 'top_p', 'stop'],
    default_parameters: null
  }
}

/** An unlimited, unused, paid key; script a 200 with a body for any other state (say, credits run out). */
function openRouterKey (token: string): Record<string, unknown> {
  return {
    // OpenRouter labels a key by a shortened form of it and never echoes it whole.
    label: token.length > 15 ? `${token.slice(0, 12)}...${token.slice(-3)}` : 'fake-key',
    limit: null,
    limit_reset: null,
    limit_remaining: null,
    include_byok_in_limit: false,
    usage: 0,
    usage_daily: 0,
    usage_weekly: 0,
    usage_monthly: 0,
    is_free_tier: false,
    is_provisioning_key: false,
    rate_limit: { requests: 1000, interval: '10s' }
  }
}

function openRouterMessage (status: number, auth: Auth): string {
  switch (status) {
    case 401: return auth.kind === 'missing' ? 'No auth credentials found' : 'User not found.'
    case 402: return 'Insufficient credits. Add more using https://openrouter.ai/settings/credits'
    case 404: return 'Not Found'
    case 429: return 'Rate limit exceeded'
    case 502: return 'Provider returned error'
    case 503: return 'No available model provider that meets your routing requirements'
    default: return STATUS_CODES[status] ?? 'Error'
  }
}

function openAIError (status: number, auth: Auth, method: string, fullPath: string): { message: string, type: string, code: string | null } {
  if (status === 401 && auth.kind === 'missing') {
    // The real API gives no code when the key is missing, only when it is wrong.
    return {
      message: "You didn't provide an API key. You need to provide your API key in an Authorization header " +
        'using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).',
      type: 'invalid_request_error',
      code: null
    }
  }
  if (status === 401) {
    const token = auth.kind === 'missing' ? '' : auth.token
    const masked = token.length > 8 ? `${token.slice(0, 3)}${'*'.repeat(token.length - 7)}${token.slice(-4)}` : '*'.repeat(token.length)
    return { message: `Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`, type: 'invalid_request_error', code: 'invalid_api_key' }
  }
  if (status === 404) return { message: `Invalid URL (${method} ${fullPath})`, type: 'invalid_request_error', code: null }
  if (status === 429) return { message: 'Rate limit reached for requests', type: 'requests', code: 'rate_limit_exceeded' }
  if (status >= 500) return { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', code: null }
  return { message: STATUS_CODES[status] ?? 'Error', type: 'invalid_request_error', code: null }
}
