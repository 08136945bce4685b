import createError from '@fastify/error'

// Every error code modeldepot answers with, in one place; test/src/errors.test.ts pins the list so a
// code never changes by accident (clients and n8n workflows branch on them).

/** One value of an error's details: a number, a string, a flag, or a list of records (the 507's protected models). */
export type ErrorDetail = number | string | boolean | ReadonlyArray<Readonly<Record<string, string>>>

/**
 * What every modeldepot error is: `err instanceof MdError` holds for each one below, and the errors
 * plugin answers with the fields it carries. An error that carries one sets it in its constructor.
 */
export abstract class MdError extends Error {
  declare readonly code: string
  declare readonly statusCode: number
  /** Headers for the client, such as the Retry-After of a provider that cools down. */
  declare readonly headers?: Readonly<Record<string, string>>
  /** Machine-readable specifics, e.g. needed_bytes and free_bytes with a 507. */
  declare readonly details?: Readonly<Record<string, ErrorDetail>>
  /** What to do about it, when this one error knows better than HINTS[code]. */
  declare readonly hint?: string
}

/**
 * `createError` with MdError as its base. Only MdError's prototype is used, never its constructor
 * (createError's sets code, statusCode and message), hence the casts.
 */
function createMdError<C extends string, SC extends number> (code: C, message: string, statusCode: SC) {
  const ErrorClass = createError(code, message, statusCode, MdError as unknown as ErrorConstructor)
  return ErrorClass as createError.FastifyErrorConstructor<MdError & { code: C, statusCode: SC }>
}

export const MdUnauthorizedError = createMdError('MD_UNAUTHORIZED', 'Missing or invalid API key', 401)
export const MdRateLimitedError = createMdError('MD_RATE_LIMITED', 'Rate limit exceeded, retry in %s', 429)
export const MdValidationError = createMdError('MD_VALIDATION_FAILED', '%s', 400)
export const MdRouteNotFoundError = createMdError('MD_ROUTE_NOT_FOUND', 'Route %s %s not found', 404)

/** Codes for errors Fastify itself raises before a handler runs (bad JSON, wrong media type, …). */
export const HTTP_STATUS_CODES: Record<number, string> = {
  400: 'MD_BAD_REQUEST',
  401: 'MD_UNAUTHORIZED',
  403: 'MD_FORBIDDEN',
  404: 'MD_NOT_FOUND',
  405: 'MD_METHOD_NOT_ALLOWED',
  406: 'MD_NOT_ACCEPTABLE',
  408: 'MD_REQUEST_TIMEOUT',
  409: 'MD_CONFLICT',
  // The docs' static files: an If-Match that does not hold, a Range past the end of the file.
  412: 'MD_PRECONDITION_FAILED',
  413: 'MD_PAYLOAD_TOO_LARGE',
  415: 'MD_UNSUPPORTED_MEDIA_TYPE',
  416: 'MD_RANGE_NOT_SATISFIABLE',
  429: 'MD_RATE_LIMITED',
  500: 'MD_INTERNAL_ERROR',
  503: 'MD_UNAVAILABLE'
}

/** What the user can do about an error, in plain words, by code. */
export const HINTS: Record<string, string> = {
  MD_UNAUTHORIZED: 'Send the header "Authorization: Bearer <key>" with one of the keys set in API_KEY or API_KEYS_FILE.',
  MD_RATE_LIMITED: 'Wait for the number of seconds in the Retry-After header, or raise RATE_LIMIT_PER_MINUTE.',
  MD_ROUTE_NOT_FOUND: 'The routes are listed in the OpenAPI document at /docs/json.',
  MD_UNSUPPORTED_MEDIA_TYPE: 'Send JSON bodies with "Content-Type: application/json".',
  MD_INTERNAL_ERROR: 'Retry later; if it persists, report it with the x-request-id of this response.',
  MD_MODEL_NOT_FOUND: 'Check the model id on the Hub (it is case-sensitive); a private model also needs an HF_TOKEN that can read it.',
  MD_REVISION_NOT_FOUND: 'Use an existing branch, tag or 40-character commit of the model, or leave revision out for main.',
  MD_MODEL_GATED: "Open the model's page on the Hub while logged in, accept its terms, and set an HF_TOKEN with read access for that account.",
  MD_HF_TOKEN_INVALID: 'HF_TOKEN is invalid or revoked: create a new one at https://huggingface.co/settings/tokens, set HF_TOKEN and restart.',
  MD_HUB_UNREACHABLE: 'Check the network and HF_ENDPOINT (behind a proxy: HTTPS_PROXY, HTTP_PROXY and NO_PROXY), then send the same request again.',
  MD_HUB_ERROR: 'The Hub failed this time: send the same request again later (after Retry-After seconds when the answer has it). GET /api/providers/huggingface shows how the Hub has been answering.',
  MD_INSUFFICIENT_STORAGE: 'Free space (DELETE /api/delete-model), narrow the download with allow_patterns, or point HF_HUB_CACHE at a larger volume.',
  MD_NO_FILES_MATCHED: 'Loosen allow_patterns / ignore_patterns; GET with auto=false lists the files and their sizes.',
  MD_JOB_ENDED: 'Only a queued, running or paused job can be paused or resumed; send the download request again to start a new job (it fetches only what the cache lacks).',
  MD_JOB_NOT_FOUND: 'GET /api/downloads lists the jobs this server knows (jobs are kept in memory until a restart).',
  MD_MODEL_NOT_CACHED: 'GET /api/models lists what is in the cache.',
  MD_CALLBACKS_DISABLED: 'Set CALLBACK_ALLOWED_HOSTS to the hosts that may receive callbacks (e.g. n8n:5678) and restart, or leave callback_url out.',
  MD_CALLBACK_NOT_ALLOWED: 'Use an http(s) URL without user:password@ whose host (or host:port) is listed in CALLBACK_ALLOWED_HOSTS.',
  MD_TOO_MANY_STREAMS: 'Close event streams you no longer read, retry after Retry-After seconds, raise EVENT_STREAMS_MAX, or long-poll GET /api/download-progress?wait=55 instead.',
  MD_PROVIDER_UNAVAILABLE: 'Wait for Retry-After seconds; GET /api/providers/{name} shows why it cools down, and POST /api/providers/{name}/check says how to fix a bad token.',
  MD_PROVIDER_NOT_FOUND: 'GET /api/providers lists the providers; more OpenAI-compatible ones can be added with PROVIDERS_FILE.',
  MD_STATE_STORE_UNAVAILABLE: 'Retry after Retry-After seconds; GET /health/ready and GET /api/system/status say whether Redis (REDIS_URL) answers again.',
  MD_DOWNLOAD_FAILED: 'Send the same request again: the download resumes where it stopped.'
}

// Models and downloads.
export const MdModelNotFoundError = createMdError('MD_MODEL_NOT_FOUND', '%s', 404)
export const MdRevisionNotFoundError = createMdError('MD_REVISION_NOT_FOUND', '%s', 404)
export const MdFileNotFoundError = createMdError('MD_FILE_NOT_FOUND', '%s', 404)
export const MdModelGatedError = createMdError('MD_MODEL_GATED', '%s', 403)
// 403, not 401: a 401 from this API always means modeldepot's own API key.
export const MdHfTokenInvalidError = createMdError('MD_HF_TOKEN_INVALID', '%s', 403)
export const MdHubUnreachableError = createMdError('MD_HUB_UNREACHABLE', '%s', 502)

export class MdHubError extends createMdError('MD_HUB_ERROR', '%s', 502) {
  override readonly headers: Readonly<Record<string, string>>
  /** `retryAfter`: the Hub's own Retry-After (of a 429 or 503), which is the client's too. */
  constructor (message: string, retryAfter: string | null = null) {
    super(message)
    this.headers = retryAfter === null ? {} : { 'retry-after': retryAfter }
  }
}

export const MdNoFilesMatchedError = createMdError('MD_NO_FILES_MATCHED', '%s', 400)

/** What the cache quota could not evict its way past: the bytes to free, what may be evicted, and what is protected and why. */
export interface QuotaShortfall { neededBytes: number, freeableBytes: number, protected: Array<{ model_id: string, reason: string }> }

export class MdInsufficientStorageError extends createMdError('MD_INSUFFICIENT_STORAGE', '%s', 507) {
  /** What the download needs and what is free, when that was known before it started; or the quota's shortfall. */
  override readonly details: Readonly<{ needed_bytes: number, free_bytes: number }>
    | Readonly<{ needed_bytes: number, freeable_bytes: number, protected: ReadonlyArray<Readonly<Record<string, string>>> }> | undefined

  constructor (message: string, space?: { neededBytes: number, freeBytes: number } | QuotaShortfall) {
    super(message)
    if (typeof space !== 'object') this.details = undefined
    else if ('freeBytes' in space) this.details = { needed_bytes: space.neededBytes, free_bytes: space.freeBytes }
    else this.details = { needed_bytes: space.neededBytes, freeable_bytes: space.freeableBytes, protected: space.protected }
  }
}

export const MdJobNotFoundError = createMdError('MD_JOB_NOT_FOUND', 'No download job %s', 404)
export const MdJobEndedError = createMdError('MD_JOB_ENDED', 'Download job %s has ended (%s): it cannot be %s', 409)
export const MdModelNotCachedError = createMdError('MD_MODEL_NOT_CACHED', '%s', 404)
export const MdModelProtectedError = createMdError('MD_MODEL_PROTECTED', '%s', 409)

// A download job can end with the code of any error above, and with these two, which no request
// answers with: they are seen in a job's `error` (GET /api/downloads/{id}, the events, the callback).
export const JOB_END_CODES = {
  /** Not a failure: the job stays unfinished in the journal and resumes at the next start. */
  serverShutdown: 'MD_SERVER_SHUTDOWN',
  /** Any other failure (a transfer that broke off, a checksum mismatch): sending the request again resumes it. */
  downloadFailed: 'MD_DOWNLOAD_FAILED'
} as const

// Providers.
/** Why a provider refuses calls for now, from its health: the status, and when it takes calls again. */
export interface ProviderRefusal { status: string, retryAfterS: number, cooldownUntil: string | null }

export class MdProviderUnavailableError extends createMdError('MD_PROVIDER_UNAVAILABLE', 'Provider %s is not taking calls right now (%s)', 503) {
  override readonly headers: Readonly<Record<string, string>>
  override readonly details: Readonly<{ provider: string, status: string, cooldown_until?: string, retry_after_s: number }>
  constructor (provider: string, refusal: ProviderRefusal) {
    super(provider, refusal.status)
    // An unconfigured provider takes calls again only once it has a key: no time to wait for.
    this.headers = refusal.status === 'unconfigured' ? {} : { 'retry-after': String(refusal.retryAfterS) }
    this.details = {
      provider,
      status: refusal.status,
      ...(refusal.cooldownUntil === null ? {} : { cooldown_until: refusal.cooldownUntil }),
      retry_after_s: refusal.retryAfterS
    }
  }
}

export const MdProviderError = createMdError('MD_PROVIDER_ERROR', '%s', 502)

export class MdTokenRejectedError extends createMdError('MD_TOKEN_REJECTED', '%s', 422) {
  /** The failed check's fix steps. */
  override readonly hint: string
  constructor (message: string, hint: string) {
    super(message)
    this.hint = hint
  }
}

export const MdModelNotBlockedError = createMdError('MD_MODEL_NOT_BLOCKED', '%s is not blocked', 404)
export const MdProviderNotFoundError = createMdError('MD_PROVIDER_NOT_FOUND', 'No provider named %s', 404)
export const MdCallbacksDisabledError = createMdError('MD_CALLBACKS_DISABLED', 'Callbacks are off on this server', 400)
export const MdCallbackNotAllowedError = createMdError('MD_CALLBACK_NOT_ALLOWED', '%s', 400)

export class MdTooManyStreamsError extends createMdError('MD_TOO_MANY_STREAMS', 'All %s event streams are in use', 503) {
  override readonly headers: Readonly<Record<string, string>>
  constructor (max: number) {
    super(String(max))
    this.headers = { 'retry-after': '5' }
  }
}

export const MdShuttingDownError = createMdError('MD_SHUTTING_DOWN', 'The server is shutting down; send the request again once it is back', 503)

/** With REDIS_URL: the state replicas share cannot be read or changed while Redis does not answer. */
export class MdStateStoreUnavailableError extends createMdError('MD_STATE_STORE_UNAVAILABLE', 'The shared state store (Redis) is not answering: %s', 503) {
  override readonly headers: Readonly<Record<string, string>>
  constructor (reason: string) {
    super(reason)
    this.headers = { 'retry-after': '5' }
  }
}

/** A valid API key whose scope does not reach what the route needs (API_KEYS_FILE gives keys their scopes). */
export class MdForbiddenError extends createMdError('MD_FORBIDDEN', 'The API key "%s" has the %s scope; this needs %s', 403) {
  override readonly details: Readonly<{ required_scope: string, key_name: string, key_scope: string }>
  override readonly hint: string
  constructor (keyName: string, keyScope: string, requiredScope: string) {
    super(keyName, keyScope, requiredScope)
    this.details = { required_scope: requiredScope, key_name: keyName, key_scope: keyScope }
    this.hint = `Use a key with the ${requiredScope} scope (download includes read; admin includes both); keys and their scopes are set in API_KEYS_FILE, and the keys of API_KEY are admin keys.`
  }
}
