import { STATUS_CODES } from 'node:http'
import type { LightMyRequestResponse } from 'fastify'
import type { Operation } from './route-catalogue.js'

// What every answer owes a client, whatever it sent: never a 5xx, every error in the one documented
// ErrorResponse shape, a status the OpenAPI document lists, and no secret. The one 5xx allowed is the
// upstream refusing a provider token the run itself set (a documented 502/503 MD_PROVIDER_*).

const ERROR_FIELDS = new Set(['statusCode', 'error', 'code', 'message', 'hint', 'details'])
// Refusals any route can give before its own schema is looked at: a malformed request (400), an
// unknown route or method (404), a body over the limit (413) or of a type it does not take (415).
const ANY_ROUTE = new Set([400, 404, 413, 415])

// The upstream's own failures, documented where they can happen (a 502 from a catalogue, a 503 while
// a provider cools down).
const UPSTREAM_CODES = new Set(['MD_PROVIDER_ERROR', 'MD_PROVIDER_UNAVAILABLE'])

export interface AnswerContext {
  /** The operation asked for, when the request used its method. */
  operation: Operation | undefined
  secrets: readonly string[]
  /** The run set a provider token of its own making, so that provider may now refuse us. */
  tokenRotated: boolean
}

/** The problems with one answer; empty when it keeps the contract. */
export function contractProblems (res: LightMyRequestResponse, { operation, secrets, tokenRotated }: AnswerContext): string[] {
  const problems: string[] = []
  if (res.statusCode >= 500 && !(tokenRotated && upstreamRefusal(res))) problems.push(`answered ${res.statusCode}`)
  if (res.statusCode >= 400) problems.push(...errorShapeProblems(res))
  const documented = operation?.statuses.has(res.statusCode) === true
  if (operation !== undefined && !documented && !ANY_ROUTE.has(res.statusCode)) problems.push(`status ${res.statusCode} is not in the OpenAPI document for ${operation.method} ${operation.path}`)
  const headers = JSON.stringify(res.headers)
  for (const secret of secrets) {
    if (res.body.includes(secret) || headers.includes(secret)) problems.push(`the answer contains the secret ${secret.slice(0, 6)}…`)
  }
  return problems
}

function upstreamRefusal (res: LightMyRequestResponse): boolean {
  let code: unknown
  try {
    code = (JSON.parse(res.body) as { code?: unknown }).code
  } catch {
    return false
  }
  return (res.statusCode === 502 || res.statusCode === 503) && typeof code === 'string' && UPSTREAM_CODES.has(code)
}

function errorShapeProblems (res: LightMyRequestResponse): string[] {
  if (!String(res.headers['content-type']).startsWith('application/json')) return [`error answer of type ${String(res.headers['content-type'])}`]
  let body: Record<string, unknown>
  try {
    body = JSON.parse(res.body) as Record<string, unknown>
  } catch {
    return [`error answer is not JSON: ${res.body.slice(0, 200)}`]
  }
  const problems: string[] = []
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return [`error answer is not an object: ${res.body.slice(0, 200)}`]
  const extra = Object.keys(body).filter((field) => !ERROR_FIELDS.has(field))
  if (extra.length > 0) problems.push(`error answer has undocumented fields ${extra.join(', ')}`)
  if (body.statusCode !== res.statusCode) problems.push(`statusCode ${String(body.statusCode)} differs from the status ${res.statusCode}`)
  if (body.error !== STATUS_CODES[res.statusCode]) problems.push(`error "${String(body.error)}" is not the status text`)
  if (typeof body.code !== 'string' || !/^MD_[A-Z0-9_]+$/.test(body.code)) problems.push(`code ${JSON.stringify(body.code)} is not an MD_ code`)
  if (typeof body.message !== 'string' || body.message === '') problems.push('message is missing')
  if (body.hint !== undefined && typeof body.hint !== 'string') problems.push('hint is not a string')
  return problems
}
