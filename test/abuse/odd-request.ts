import fc from 'fast-check'
import type { InjectOptions } from 'fastify'
import { KEY } from '../helpers/app.js'
import { contentType, headerText, LAST_JOB_ID, oddJson, oddString, rawBody, textFor, valueFor, type Oddness } from './odd-values.js'
import type { Operation } from './route-catalogue.js'

/** A value for the URL: sent percent-encoded, or as it is (so `%2e%2e` reaches the server undecoded by us). */
interface UrlValue { value: string, raw: boolean }

type Body =
  | { kind: 'none' }
  | { kind: 'json', value: unknown, contentType: string | undefined }
  | { kind: 'raw', text: string, contentType: string | undefined }

/** One request a fuzz run sends: an operation of the app, with odd values in every place it reads. */
export interface OddRequest {
  operation: Operation
  method: string
  path: Record<string, UrlValue>
  query: Array<[string, UrlValue]>
  body: Body
  authorization: string | undefined
  requestId: string | undefined
}

const urlValue = (name: string, oddness: Oddness): fc.Arbitrary<UrlValue> => fc.record({ value: textFor(name, oddness), raw: fc.boolean() })

const VALID_AUTH = `Bearer ${KEY}`
// Mostly the right key, so requests get past auth to the handlers; sometimes a wrong or malformed one.
const authorization = fc.oneof(
  { weight: 12, arbitrary: fc.constant<string | undefined>(VALID_AUTH) },
  { weight: 1, arbitrary: fc.constantFrom<string | undefined>(undefined, 'Bearer', 'Bearer ', `Basic ${KEY}`, `Bearer ${KEY} ${KEY}`, `Bearer ${KEY.slice(1)}`) },
  { weight: 1, arbitrary: headerText.map((text): string | undefined => `Bearer ${text}`) }
)

const bodyObject = (fields: string[], oddnessOf: (field: string) => Oddness): fc.Arbitrary<Record<string, unknown>> =>
  fc.record(Object.fromEntries(fields.map((field) => [field, valueFor(field, oddnessOf(field))])), { requiredKeys: [] })

/** Anything goes: odd values mixed into every parameter, odd bodies, headers and methods. */
function wildRequest (operation: Operation): fc.Arbitrary<OddRequest> {
  const object = fc.tuple(bodyObject(operation.bodyFields ?? [], () => 'mixed'), fc.dictionary(oddString, oddJson, { maxKeys: 2 }))
    .map(([fields, extra]) => ({ ...extra, ...fields }))
  const bodies = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('json' as const), value: object, contentType }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('json' as const), value: oddJson, contentType }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('raw' as const), text: rawBody, contentType }) }
  )
  // An operation without a body still gets one now and then: the server must refuse it cleanly.
  const body: fc.Arbitrary<Body> = operation.bodyFields === undefined
    ? fc.oneof({ weight: 4, arbitrary: fc.constant({ kind: 'none' as const }) }, { weight: 1, arbitrary: bodies })
    : fc.oneof({ weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) }, { weight: 4, arbitrary: bodies })
  const queryNames = fc.oneof(
    { weight: 5, arbitrary: operation.queryParams.length > 0 ? fc.constantFrom(...operation.queryParams) : oddString },
    { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'model_id[]', 'toString', '') },
    { weight: 1, arbitrary: oddString }
  )
  return fc.record({
    operation: fc.constant(operation),
    method: fc.oneof({ weight: 12, arbitrary: fc.constant(operation.method) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS') }),
    path: fc.record(Object.fromEntries(operation.pathParams.map((name) => [name, urlValue(name, 'mixed')]))),
    // A name may repeat: `?model_id=a&model_id=b` arrives as a list.
    query: fc.array(queryNames.chain((name) => fc.tuple(fc.constant(name), urlValue(name, 'mixed'))), { maxLength: 5 }),
    body,
    authorization,
    requestId: fc.option(headerText, { nil: undefined })
  })
}

/**
 * A request a client could mean, with exactly one parameter odd (or none): it gets past everything
 * else, so the odd value meets the code behind the first checks, and the handlers run.
 */
function tameRequest (operation: Operation): fc.Arbitrary<OddRequest> {
  const places = [
    ...operation.pathParams.map((name) => `path:${name}`),
    ...operation.queryParams.map((name) => `query:${name}`),
    ...(operation.bodyFields ?? []).map((name) => `body:${name}`)
  ]
  return fc.constantFrom('none', ...places).chain((oddPlace) => {
    const oddness = (place: string): Oddness => place === oddPlace ? 'odd' : 'tame'
    const query = fc.tuple(...operation.queryParams.map((name) =>
      fc.option(fc.tuple(fc.constant(name), urlValue(name, oddness(`query:${name}`))), { nil: undefined, freq: oddness(`query:${name}`) === 'odd' ? 100 : 2 })))
      .map((entries) => entries.filter((entry): entry is [string, UrlValue] => entry !== undefined))
    const body: fc.Arbitrary<Body> = operation.bodyFields === undefined
      ? fc.constant({ kind: 'none' as const })
      : bodyObject(operation.bodyFields, (field) => oddness(`body:${field}`)).map((value) => ({ kind: 'json' as const, value, contentType: 'application/json' }))
    return fc.record({
      operation: fc.constant(operation),
      method: fc.constant(operation.method),
      path: fc.record(Object.fromEntries(operation.pathParams.map((name) => [name, urlValue(name, oddness(`path:${name}`))]))),
      query,
      body,
      authorization: fc.constant<string | undefined>(VALID_AUTH),
      requestId: fc.constant(undefined)
    })
  })
}

/** A request to any documented operation. */
export const oddRequest = (operations: Operation[]): fc.Arbitrary<OddRequest> =>
  fc.constantFrom(...operations).chain((operation) => fc.oneof(wildRequest(operation), tameRequest(operation)))

// Every byte but the unreserved ones percent-encoded: never throws, even on a lone surrogate.
const percentEncode = (text: string): string =>
  [...Buffer.from(text, 'utf8')].map((byte) => /[A-Za-z0-9\-_.~]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join('')

function encoded ({ value, raw }: UrlValue, lastJobId: string | undefined, reserved: RegExp): string {
  const text = value === LAST_JOB_ID ? lastJobId ?? value : value
  return raw && /^[\x21-\x7e]*$/.test(text) && !reserved.test(text) ? text : percentEncode(text)
}

/** The request as `app.inject` options; `lastJobId` stands in for LAST_JOB_ID. */
export function toInject (request: OddRequest, lastJobId: string | undefined): InjectOptions {
  const path = request.operation.path.replace(/\{(\w+)\}/g, (_match, name: string) =>
    encoded(request.path[name] ?? { value: '', raw: false }, lastJobId, /[#?]/))
  const query = request.query.map(([name, value]) => `${percentEncode(name)}=${encoded(value, lastJobId, /[#&=+]/)}`).join('&')
  const headers: Record<string, string> = {}
  if (request.authorization !== undefined) headers.authorization = request.authorization
  if (request.requestId !== undefined) headers['x-request-id'] = request.requestId
  const { body } = request
  if (body.kind !== 'none' && body.contentType !== undefined) headers['content-type'] = body.contentType
  const payload = body.kind === 'json' ? JSON.stringify(body.value) : body.kind === 'raw' ? body.text : undefined
  return {
    method: request.method as InjectOptions['method'],
    url: query === '' ? path : `${path}?${query}`,
    headers,
    ...(payload === undefined ? {} : { payload })
  }
}

/** One line that says what was sent, for a failure report (long values cut short). */
export function describeRequest (options: InjectOptions): string {
  const payload = typeof options.payload === 'string' ? options.payload : ''
  const cut = (text: string): string => text.length > 300 ? `${text.slice(0, 300)}… (${text.length} chars)` : text
  return `${options.method ?? 'GET'} ${cut(String(options.url))} headers=${JSON.stringify(options.headers)} body=${cut(payload)}`
}
