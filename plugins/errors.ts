import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { Type } from '../src/type-builder.js'
import { errorCode } from '../src/error-code.js'
import { HINTS, HTTP_STATUS_CODES, MdError, MdRouteNotFoundError, MdShuttingDownError, MdValidationError } from '../src/errors.js'

/** The one shape of every error answer, declared once and referenced by every route. */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ description: 'The HTTP status, repeated for clients that only see the body', examples: [401] }),
  error: Type.String({ description: 'The HTTP status text', examples: ['Unauthorized'] }),
  code: Type.String({ description: 'A stable, machine-readable code (MD_*) to branch on', examples: ['MD_UNAUTHORIZED'] }),
  message: Type.String({ description: 'What went wrong, naming the field when a parameter is at fault' }),
  hint: Type.Optional(Type.String({ description: 'What to do about it, when the user can act' })),
  details: Type.Optional(Type.Record(Type.String(), Type.Union([Type.Number(), Type.String(), Type.Boolean(), Type.Array(Type.Record(Type.String(), Type.String()))]), { description: 'Machine-readable specifics, e.g. needed_bytes and free_bytes with a 507 (with the cache quota: needed_bytes, freeable_bytes and protected, a list of {model_id, reason})' }))
}, { $id: 'ErrorResponse', title: 'ErrorResponse', additionalProperties: false })

export const errorRef = (description: string): { $ref: string, description: string } =>
  ({ $ref: 'ErrorResponse#', description })

interface ErrorBody { statusCode: number, error: string, code: string, message: string, hint?: string, details?: Record<string, unknown> }

/** The largest request body; the longest real one (a token, 100 patterns) is a few KiB. */
export const BODY_LIMIT_BYTES = 1024 * 1024

const FASTIFY_HINTS: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'Check that the body is valid JSON.',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'Send a JSON object, or no Content-Type header when there is no body.',
  FST_ERR_CTP_BODY_TOO_LARGE: `The body is limited to ${BODY_LIMIT_BYTES / 1024 / 1024} MiB.`,
  FST_ERR_BAD_URL: 'Percent-encode the URL as UTF-8 (encodeURIComponent does).'
}

const WHERE: Record<string, string> = { body: 'body', querystring: 'query string', params: 'path', headers: 'headers' }

interface ValidationIssue { instancePath: string, keyword: string, message?: string, params: Record<string, unknown> }

// "model_id is required (in body)" reads better than Ajv's "body must have required property 'model_id'".
function describeValidation (issues: ValidationIssue[], context: string | undefined): string {
  const where = WHERE[context ?? ''] ?? context ?? 'request'
  return relevant(issues).map((issue) => {
    const field = issue.instancePath.replace(/^\//, '').replaceAll('/', '.')
    if (issue.keyword === 'required') {
      const missing = String(issue.params.missingProperty)
      return `${field === '' ? missing : `${field}.${missing}`} is required (in ${where})`
    }
    if (issue.keyword === 'additionalProperties') {
      return `${String(issue.params.additionalProperty)} is not a known field (in ${where})`
    }
    return `${field === '' ? where : field} ${issue.message ?? 'is invalid'}${field === '' ? '' : ` (in ${where})`}`
  }).join('; ')
}

const namesField = (issue: ValidationIssue): boolean =>
  issue.instancePath !== '' || issue.keyword === 'required' || issue.keyword === 'additionalProperties'

/**
 * A value that may have one of several types fails every branch: Ajv adds "must match a schema in
 * anyOf" and one "must be …" a branch, and a body that may be null adds "body must be null" to the
 * real fault. Once a field is named, the body's own type says nothing; the types one value may have
 * are said once ("allow_patterns must be string or array").
 */
function relevant (issues: ValidationIssue[]): ValidationIssue[] {
  let specific = issues.filter((issue) => issue.keyword !== 'anyOf')
  if (specific.length === 0) return issues
  if (specific.some(namesField)) specific = specific.filter((issue) => namesField(issue) || issue.keyword !== 'type')
  const typesAt = new Map<string, string[]>()
  for (const issue of specific) {
    if (issue.keyword === 'type') typesAt.set(issue.instancePath, [...typesAt.get(issue.instancePath) ?? [], String(issue.params.type)])
  }
  return specific.flatMap((issue) => {
    if (issue.keyword !== 'type') return [issue]
    const types = typesAt.get(issue.instancePath)
    if (types === undefined) return []
    typesAt.delete(issue.instancePath)
    return [{ ...issue, message: `must be ${types.join(' or ')}` }]
  })
}

/** The code of an error that is not ours, by its status; a status with none of its own gets its class's. */
const httpStatusCode = (status: number): string => HTTP_STATUS_CODES[status] ?? (status >= 500 ? 'MD_INTERNAL_ERROR' : 'MD_BAD_REQUEST')

export function toErrorBody (error: FastifyError): ErrorBody {
  if (error.validation !== undefined) {
    error = new MdValidationError(describeValidation(error.validation as ValidationIssue[], error.validationContext))
  }
  const statusCode = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
  const ownCode = errorCode(error) ?? ''
  const internal = statusCode >= 500 && !ownCode.startsWith('MD_')
  const code = ownCode.startsWith('MD_') ? ownCode : httpStatusCode(statusCode)
  // Only our errors carry a hint or details of their own (set by their constructors).
  const own = error instanceof MdError ? error : undefined
  const hint = own?.hint ?? HINTS[code] ?? FASTIFY_HINTS[ownCode]
  const details = own?.details
  return {
    statusCode,
    error: STATUS_CODES[statusCode] ?? 'Error',
    code,
    // An unexpected failure's message may carry paths or internals: the log has it, the client does not.
    message: internal ? 'Internal server error' : error.message,
    ...(hint === undefined ? {} : { hint }),
    ...(details === undefined ? {} : { details })
  }
}

/**
 * The headers an error carries for the client, as Fastify's default handler sets them: ours (the
 * Retry-After of a provider that cools down), typed; another library's by Fastify's convention, a
 * `headers` field (http-errors' Content-Range of a 416 from the docs' static files).
 */
function errorHeaders (error: FastifyError): Readonly<Record<string, string>> | undefined {
  if (error instanceof MdError) return error.headers
  const headers = (error as { headers?: unknown }).headers
  return typeof headers === 'object' && headers !== null ? headers as Record<string, string> : undefined
}

// find-my-way's default; a longer path parameter is refused before routing.
const MAX_PARAM_LENGTH = 100

/**
 * Fastify's `frameworkErrors`: what it refuses before routing (a URL that does not decode, a path
 * parameter over MAX_PARAM_LENGTH) answers in the common shape too, instead of Fastify's own body.
 */
export function frameworkError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const refused = error.code === 'FST_ERR_MAX_PARAM_LENGTH'
    ? new MdValidationError(`a path parameter is longer than ${MAX_PARAM_LENGTH} characters (in path)`)
    : error
  const body = toErrorBody(refused)
  reply.header('x-request-id', request.id)
  void reply.code(body.statusCode).send(body)
}

export function routeNotFound (request: FastifyRequest): never {
  throw new MdRouteNotFoundError(request.method, request.url.split('?')[0])
}

async function errorsPlugin (app: FastifyInstance): Promise<void> {
  app.addSchema(ErrorResponse)

  // Every operation documents the errors every operation can return, so generated clients are typed.
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema
    if (schema === undefined || schema.hide === true) return
    const hasInput = schema.body !== undefined || schema.querystring !== undefined || schema.params !== undefined
    const own = schema.response as Record<string, { description?: string }> | undefined
    const shuttingDown = 'MD_SHUTTING_DOWN: the server is shutting down; send the request again once it is back'
    schema.response = {
      ...(hasInput ? { 400: errorRef('A parameter is missing or invalid; the message names it') } : {}),
      500: errorRef('An unexpected error; the x-request-id header identifies it in the logs'),
      ...(route.config?.answersWhileClosing === true ? {} : { 503: errorRef(shuttingDown) }),
      ...own,
      // A route's own 503 (a provider cooling down, too many streams) is not the only one.
      // (The hook may see one schema twice: a GET's HEAD shares it.)
      ...(own?.[503]?.description !== undefined && !own[503].description.includes(shuttingDown) && route.config?.answersWhileClosing !== true
        ? { 503: errorRef(`${own[503].description}; or ${shuttingDown}`) }
        : {})
    }
  })

  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const body = toErrorBody(error)
    const headers = errorHeaders(error)
    if (headers !== undefined) reply.headers(headers)
    // A request refused by a shutdown is expected, not a failure to look into.
    if (body.statusCode >= 500 && !(error instanceof MdShuttingDownError)) request.log.error({ err: error }, 'request failed')
    return reply.code(body.statusCode).send(body)
  })

  app.setNotFoundHandler(routeNotFound)
}

export default fp(errorsPlugin, { name: 'errors' })
