import createError from '@fastify/error'

// Every error code modeldepot answers with, in one place; test/errors.test.ts pins the list so a
// code never changes by accident (clients and n8n workflows branch on them).
export const MdUnauthorizedError = createError('MD_UNAUTHORIZED', 'Missing or invalid API key', 401)
export const MdRateLimitedError = createError('MD_RATE_LIMITED', 'Rate limit exceeded, retry in %s', 429)
export const MdValidationError = createError('MD_VALIDATION_FAILED', '%s', 400)
export const MdRouteNotFoundError = createError('MD_ROUTE_NOT_FOUND', 'Route %s %s not found', 404)

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
  413: 'MD_PAYLOAD_TOO_LARGE',
  415: 'MD_UNSUPPORTED_MEDIA_TYPE',
  429: 'MD_RATE_LIMITED',
  500: 'MD_INTERNAL_ERROR',
  503: 'MD_UNAVAILABLE'
}

/** What the user can do about an error, in plain words, by code. */
export const HINTS: Record<string, string> = {
  MD_UNAUTHORIZED: 'Send the header "Authorization: Bearer <key>" with one of the keys set in API_KEY.',
  MD_RATE_LIMITED: 'Wait for the number of seconds in the Retry-After header, or raise RATE_LIMIT_PER_MINUTE.',
  MD_ROUTE_NOT_FOUND: 'The routes are listed in the OpenAPI document at /docs/json.',
  MD_UNSUPPORTED_MEDIA_TYPE: 'Send JSON bodies with "Content-Type: application/json".',
  MD_INTERNAL_ERROR: 'Retry later; if it persists, report it with the x-request-id of this response.',
  MD_MODEL_NOT_FOUND: 'Check the model id on the Hub (it is case-sensitive); a private model also needs an HF_TOKEN that can read it.',
  MD_REVISION_NOT_FOUND: 'Use an existing branch, tag or 40-character commit of the model, or leave revision out for main.',
  MD_MODEL_GATED: "Open the model's page on the Hub while logged in, accept its terms, and set an HF_TOKEN with read access for that account.",
  MD_HF_TOKEN_INVALID: 'HF_TOKEN is invalid or revoked: create a new one at https://huggingface.co/settings/tokens, set HF_TOKEN and restart.',
  MD_HUB_UNREACHABLE: 'Check the network and HF_ENDPOINT, then send the same request again.',
  MD_HUB_ERROR: 'The Hub failed this time: send the same request again later (after Retry-After seconds when the answer has it). GET /api/providers/huggingface shows how the Hub has been answering.',
  MD_INSUFFICIENT_STORAGE: 'Free space (DELETE /api/delete-model), narrow the download with allow_patterns, or point HF_HUB_CACHE at a larger volume.',
  MD_NO_FILES_MATCHED: 'Loosen allow_patterns / ignore_patterns; GET with auto=false lists the files and their sizes.',
  MD_JOB_NOT_FOUND: 'GET /api/downloads lists the jobs this server knows (jobs are kept in memory until a restart).',
  MD_MODEL_NOT_CACHED: 'GET /api/models lists what is in the cache.',
  MD_CALLBACKS_DISABLED: 'Set CALLBACK_ALLOWED_HOSTS to the hosts that may receive callbacks (e.g. n8n:5678) and restart, or leave callback_url out.',
  MD_CALLBACK_NOT_ALLOWED: 'Use an http(s) URL without user:password@ whose host (or host:port) is listed in CALLBACK_ALLOWED_HOSTS.',
  MD_TOO_MANY_STREAMS: 'Close event streams you no longer read, retry after Retry-After seconds, raise EVENT_STREAMS_MAX, or long-poll GET /api/download-progress?wait=55 instead.',
  MD_PROVIDER_UNAVAILABLE: 'Wait for Retry-After seconds; GET /api/providers/{name} shows why it cools down, and POST /api/providers/{name}/check says how to fix a bad token.',
  MD_PROVIDER_NOT_FOUND: 'GET /api/providers lists the providers; more OpenAI-compatible ones can be added with PROVIDERS_FILE.',
  MD_DOWNLOAD_FAILED: 'Send the same request again: the download resumes where it stopped.'
}

// Models and downloads.
export const MdModelNotFoundError = createError('MD_MODEL_NOT_FOUND', '%s', 404)
export const MdRevisionNotFoundError = createError('MD_REVISION_NOT_FOUND', '%s', 404)
export const MdFileNotFoundError = createError('MD_FILE_NOT_FOUND', '%s', 404)
export const MdModelGatedError = createError('MD_MODEL_GATED', '%s', 403)
// 403, not 401: a 401 from this API always means modeldepot's own API key.
export const MdHfTokenInvalidError = createError('MD_HF_TOKEN_INVALID', '%s', 403)
export const MdHubUnreachableError = createError('MD_HUB_UNREACHABLE', '%s', 502)
export const MdHubError = createError('MD_HUB_ERROR', '%s', 502)
export const MdNoFilesMatchedError = createError('MD_NO_FILES_MATCHED', '%s', 400)
export const MdInsufficientStorageError = createError('MD_INSUFFICIENT_STORAGE', '%s', 507)
export const MdJobNotFoundError = createError('MD_JOB_NOT_FOUND', 'No download job %s', 404)
export const MdModelNotCachedError = createError('MD_MODEL_NOT_CACHED', '%s', 404)
export const MdModelProtectedError = createError('MD_MODEL_PROTECTED', '%s', 409)
// Providers.
export const MdProviderUnavailableError = createError('MD_PROVIDER_UNAVAILABLE', 'Provider %s is not taking calls right now (%s)', 503)
export const MdProviderError = createError('MD_PROVIDER_ERROR', '%s', 502)
export const MdTokenRejectedError = createError('MD_TOKEN_REJECTED', '%s', 422)
export const MdModelNotBlockedError = createError('MD_MODEL_NOT_BLOCKED', '%s is not blocked', 404)
export const MdProviderNotFoundError = createError('MD_PROVIDER_NOT_FOUND', 'No provider named %s', 404)
export const MdCallbacksDisabledError = createError('MD_CALLBACKS_DISABLED', 'Callbacks are off on this server', 400)
export const MdCallbackNotAllowedError = createError('MD_CALLBACK_NOT_ALLOWED', '%s', 400)
export const MdTooManyStreamsError = createError('MD_TOO_MANY_STREAMS', 'All %s event streams are in use', 503)
export const MdShuttingDownError = createError('MD_SHUTTING_DOWN', 'The server is shutting down; send the request again once it is back', 503)
