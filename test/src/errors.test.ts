import fastify from 'fastify'
import t from 'tap'
import { insufficientStorage, jobError, SHUTDOWN_BEFORE_START, SHUTDOWN_DURING } from '../../src/downloads/job-errors.js'
import * as errors from '../../src/errors.js'
import {
  HINTS, HTTP_STATUS_CODES, JOB_END_CODES, MdError, MdHubError, MdInsufficientStorageError, MdProviderUnavailableError,
  MdTokenRejectedError, MdTooManyStreamsError, MdValidationError
} from '../../src/errors.js'
import { hubError } from '../../src/hub/hub-client.js'
import { HubInputError, RepoIdError, RevisionError } from '../../src/hub/repo-id.js'

type ErrorClass = new (...args: unknown[]) => MdError

// The classes whose constructors take more than strings, with arguments they accept.
const ARGUMENTS: Record<string, unknown[]> = {
  MdProviderUnavailableError: ['huggingface', { status: 'down', retryAfterS: 30, cooldownUntil: null }],
  MdTooManyStreamsError: [8]
}

const errorClasses = (): Array<[string, ErrorClass]> => (Object.entries(errors) as Array<[string, unknown]>)
  .filter((entry): entry is [string, ErrorClass] => typeof entry[1] === 'function' && entry[1] !== MdError)

// Clients and n8n workflows branch on these codes: changing one is a breaking change.
t.test('the error codes are pinned', async (t) => {
  const classes = errorClasses()
  for (const [name, ErrorClass] of classes) t.ok(ErrorClass.prototype instanceof MdError, `${name} is an MdError`)
  const codes = classes.map(([name, ErrorClass]) => {
    const e = new ErrorClass(...(ARGUMENTS[name] ?? ['a', 'b']))
    t.ok(e instanceof ErrorClass && e instanceof MdError, `${name}: instanceof holds`)
    return `${e.code} ${e.statusCode}`
  }).sort()
  t.same(codes, [
    'MD_CALLBACKS_DISABLED 400',
    'MD_CALLBACK_NOT_ALLOWED 400',
    'MD_FILE_NOT_FOUND 404',
    'MD_FORBIDDEN 403',
    'MD_HF_TOKEN_INVALID 403',
    'MD_HUB_ERROR 502',
    'MD_HUB_UNREACHABLE 502',
    'MD_INSUFFICIENT_STORAGE 507',
    'MD_JOB_ENDED 409',
    'MD_JOB_NOT_FOUND 404',
    'MD_MODEL_GATED 403',
    'MD_MODEL_NOT_BLOCKED 404',
    'MD_MODEL_NOT_CACHED 404',
    'MD_MODEL_NOT_FOUND 404',
    'MD_MODEL_PROTECTED 409',
    'MD_NO_FILES_MATCHED 400',
    'MD_PROVIDER_ERROR 502',
    'MD_PROVIDER_NOT_FOUND 404',
    'MD_PROVIDER_UNAVAILABLE 503',
    'MD_RATE_LIMITED 429',
    'MD_REVISION_NOT_FOUND 404',
    'MD_ROUTE_NOT_FOUND 404',
    'MD_SHUTTING_DOWN 503',
    'MD_STATE_STORE_UNAVAILABLE 503',
    'MD_TOKEN_REJECTED 422',
    'MD_TOO_MANY_STREAMS 503',
    'MD_UNAUTHORIZED 401',
    'MD_VALIDATION_FAILED 400'
  ])

  // The codes of the errors Fastify itself raises, by their status.
  t.same(Object.entries(HTTP_STATUS_CODES).map(([status, code]) => `${status} ${code}`), [
    '400 MD_BAD_REQUEST',
    '401 MD_UNAUTHORIZED',
    '403 MD_FORBIDDEN',
    '404 MD_NOT_FOUND',
    '405 MD_METHOD_NOT_ALLOWED',
    '406 MD_NOT_ACCEPTABLE',
    '408 MD_REQUEST_TIMEOUT',
    '409 MD_CONFLICT',
    '412 MD_PRECONDITION_FAILED',
    '413 MD_PAYLOAD_TOO_LARGE',
    '415 MD_UNSUPPORTED_MEDIA_TYPE',
    '416 MD_RANGE_NOT_SATISFIABLE',
    '429 MD_RATE_LIMITED',
    '500 MD_INTERNAL_ERROR',
    '503 MD_UNAVAILABLE'
  ])

  // The codes a download job can end with besides those of the errors above.
  t.same(Object.values(JOB_END_CODES).sort(), ['MD_DOWNLOAD_FAILED', 'MD_SERVER_SHUTDOWN'])
})

t.test('every hint is for a pinned code, and every status of Fastify\'s own errors has a code', async (t) => {
  const pinned = new Set([
    ...errorClasses().map(([name, ErrorClass]) => new ErrorClass(...(ARGUMENTS[name] ?? ['a', 'b'])).code),
    ...Object.values(HTTP_STATUS_CODES),
    ...Object.values(JOB_END_CODES)
  ])
  t.same(Object.keys(HINTS).filter((code) => !pinned.has(code)), [], 'no hint for a code that does not exist')

  const statuses = new Set<number>()
  for (const FastifyErrorClass of Object.values(fastify.errorCodes)) {
    const status = new FastifyErrorClass('a', 'b', 'c').statusCode
    if (status !== undefined) statuses.add(status)
  }
  // 414 is a path parameter over the limit, which the errors plugin answers as MD_VALIDATION_FAILED.
  statuses.delete(414)
  t.same([...statuses].filter((status) => HTTP_STATUS_CODES[status] === undefined), [], 'each has a code of its own')
})

t.test('a job ends with one of the pinned codes', async (t) => {
  t.same([SHUTDOWN_BEFORE_START.code, SHUTDOWN_DURING.code], ['MD_SERVER_SHUTDOWN', 'MD_SERVER_SHUTDOWN'])
  t.same(jobError(new Error('the transfer broke off')), { code: 'MD_DOWNLOAD_FAILED', message: 'the transfer broke off', hint: HINTS.MD_DOWNLOAD_FAILED })
  t.match(jobError(Object.assign(new Error('no space left'), { code: 'ENOSPC' })), {
    code: 'MD_INSUFFICIENT_STORAGE',
    message: /disk filled up/,
    hint: HINTS.MD_INSUFFICIENT_STORAGE
  })
  t.same(jobError(new MdHubError('The Hub answered 500')), { code: 'MD_HUB_ERROR', message: 'The Hub answered 500', hint: HINTS.MD_HUB_ERROR }, 'ours, as it is')
})

t.test('an error\'s constructor sets the fields it carries', async (t) => {
  const cooling = new MdProviderUnavailableError('openrouter', { status: 'rate_limited', retryAfterS: 120, cooldownUntil: '2026-11-22T12:02:00.000Z' })
  t.equal(cooling.message, 'Provider openrouter is not taking calls right now (rate_limited)')
  t.same(cooling.headers, { 'retry-after': '120' })
  // The download engine reads status and retry_after_s to wait out a cooldown of the Hub.
  t.same(cooling.details, { provider: 'openrouter', status: 'rate_limited', cooldown_until: '2026-11-22T12:02:00.000Z', retry_after_s: 120 })
  const unconfigured = new MdProviderUnavailableError('openai', { status: 'unconfigured', retryAfterS: 0, cooldownUntil: null })
  t.same(unconfigured.headers, {}, 'no Retry-After: it takes calls once it has a key, not after a time')
  t.same(unconfigured.details, { provider: 'openai', status: 'unconfigured', retry_after_s: 0 })

  t.same(new MdTooManyStreamsError(8).headers, { 'retry-after': '5' })
  t.equal(new MdTooManyStreamsError(8).message, 'All 8 event streams are in use')
  t.equal(new MdTokenRejectedError('The new openai token failed its check', 'Create a new key.').hint, 'Create a new key.')

  const full = insufficientStorage('org/huge', 2000, 1000)
  t.ok(full instanceof MdInsufficientStorageError)
  t.equal(full.message, 'Not enough free disk space for org/huge: 2000 bytes are needed and 1000 are free')
  t.same(full.details, { needed_bytes: 2000, free_bytes: 1000 })

  t.same(new MdHubError('The Hub answered 500').headers, {})
  const limited = await hubError(new Response('', { status: 429, headers: { 'retry-after': '7' } }), 'https://hub.test')
  t.ok(limited instanceof MdHubError)
  t.same((limited as MdHubError).headers, { 'retry-after': '7' }, 'the Hub\'s Retry-After is the client\'s too')
})

t.test('bad input from the Hub validators is an MdValidationError with its own hint', async (t) => {
  const err = new RepoIdError('model_id is not a valid id', 'Use org/name.')
  t.ok(err instanceof MdValidationError && err instanceof MdError && err instanceof HubInputError)
  t.match(err, { code: 'MD_VALIDATION_FAILED', statusCode: 400, name: 'RepoIdError', hint: 'Use org/name.' })
  // createError's classes take every error of their code for theirs; these keep to their own chain.
  t.notOk(err instanceof RevisionError)
  t.notOk(new MdValidationError('x') instanceof HubInputError)
})
