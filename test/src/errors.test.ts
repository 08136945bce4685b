import t from 'tap'
import * as errors from '../../src/errors.js'

// Clients and n8n workflows branch on these codes: changing one is a breaking change.
t.test('the error codes are pinned', async (t) => {
  type ErrorClass = new (...args: string[]) => Error & { code: string, statusCode: number }
  const codes = (Object.values(errors) as unknown[])
    .filter((value): value is ErrorClass => typeof value === 'function')
    .map((ErrorClass) => { const e = new ErrorClass('a', 'b'); return `${e.code} ${e.statusCode}` })
    .sort()
  t.same(codes, [
    'MD_CALLBACKS_DISABLED 400',
    'MD_CALLBACK_NOT_ALLOWED 400',
    'MD_FILE_NOT_FOUND 404',
    'MD_HF_TOKEN_INVALID 403',
    'MD_HUB_ERROR 502',
    'MD_HUB_UNREACHABLE 502',
    'MD_INSUFFICIENT_STORAGE 507',
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
    'MD_TOKEN_REJECTED 422',
    'MD_TOO_MANY_STREAMS 503',
    'MD_UNAUTHORIZED 401',
    'MD_VALIDATION_FAILED 400'
  ])
  t.same(Object.values(errors.HTTP_STATUS_CODES).every((code) => code.startsWith('MD_')), true)
})
