import type { FastifyInstance } from 'fastify'

// Every operation the app documents, read from its own OpenAPI document at run time, so a route
// added tomorrow is fuzzed without anyone touching the fuzzer.

export interface Operation {
  method: string
  /** The OpenAPI path, e.g. `/api/downloads/{job_id}`. */
  path: string
  pathParams: string[]
  queryParams: string[]
  /** The field names of the JSON body, when the operation takes one. */
  bodyFields: string[] | undefined
  /** The status codes the document lists for the operation. */
  statuses: Set<number>
}

interface Schema { $ref?: string, properties?: Record<string, unknown>, anyOf?: Schema[], oneOf?: Schema[], allOf?: Schema[] }
interface Document {
  paths: Record<string, Record<string, {
    parameters?: Array<{ in: string, name: string }>
    requestBody?: { content?: Record<string, { schema?: Schema }> }
    responses?: Record<string, unknown>
  }>>
  components?: { schemas?: Record<string, Schema> }
}

export async function documentedOperations (app: FastifyInstance): Promise<Operation[]> {
  await app.ready()
  const document = app.swagger() as unknown as Document
  const resolve = (schema: Schema | undefined): Schema | undefined =>
    schema?.$ref === undefined ? schema : document.components?.schemas?.[schema.$ref.split('/').at(-1) ?? '']
  const fieldsOf = (schema: Schema | undefined): string[] => {
    const resolved = resolve(schema)
    if (resolved === undefined) return []
    const nested = [...resolved.anyOf ?? [], ...resolved.oneOf ?? [], ...resolved.allOf ?? []].flatMap(fieldsOf)
    return [...new Set([...Object.keys(resolved.properties ?? {}), ...nested])]
  }
  const operations: Operation[] = []
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      // A stream of every job never ends by itself, and it takes no parameter to fuzz; the stream of
      // one job is fuzzed (an odd job id answers 404 before any stream starts).
      if (isEndlessStream(path, operation.responses)) continue
      const parameters = operation.parameters ?? []
      const body = operation.requestBody?.content?.['application/json']?.schema
      operations.push({
        method: method.toUpperCase(),
        path,
        pathParams: parameters.filter((parameter) => parameter.in === 'path').map((parameter) => parameter.name),
        queryParams: parameters.filter((parameter) => parameter.in === 'query').map((parameter) => parameter.name),
        bodyFields: body === undefined ? undefined : fieldsOf(body),
        statuses: new Set(Object.keys(operation.responses ?? {}).map(Number))
      })
    }
  }
  return operations
}

/** The documented streams that never end by themselves (every job's events), as paths. */
export async function endlessStreams (app: FastifyInstance): Promise<Set<string>> {
  const document = app.swagger() as unknown as Document
  return new Set(Object.entries(document.paths)
    .filter(([path, methods]) => Object.values(methods).some((operation) => isEndlessStream(path, operation.responses)))
    .map(([path]) => path))
}

function isEndlessStream (path: string, responses: Record<string, unknown> | undefined): boolean {
  const ok = responses?.['200'] as { content?: Record<string, unknown> } | undefined
  return ok?.content?.['text/event-stream'] !== undefined && !path.includes('{')
}
