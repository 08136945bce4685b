import { readFile } from 'node:fs/promises'
import t from 'tap'
import { formatOpenApiDocument, generateOpenApiDocument } from '../../src/openapi.js'
import { repoFile } from '../helpers/repo-root.js'

interface Operation {
  operationId?: string
  summary?: string
  description?: string
  tags?: string[]
  security?: unknown[]
  'x-required-scope'?: string
  responses: Record<string, { description?: string, content?: Record<string, { schema?: unknown }> }>
}

const committed = async (): Promise<string> => readFile(repoFile('openapi/openapi.json'), 'utf8')

t.test('openapi/openapi.json is what the code generates (run `npm run openapi` after changing a route)', async (t) => {
  t.equal(await committed(), formatOpenApiDocument(await generateOpenApiDocument()))
})

t.test('every operation is complete enough for a fully typed client', async (t) => {
  const document = JSON.parse(await committed()) as { paths: Record<string, Record<string, Operation>>, components: { schemas: Record<string, unknown> } }
  t.ok(document.components.schemas.ErrorResponse, 'the error shape is declared once as a shared schema')
  const operationIds = new Set<string>()
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const name = `${method.toUpperCase()} ${path}`
      t.type(operation.operationId, 'string', `${name} has an operationId`)
      t.notOk(operationIds.has(operation.operationId!), `${name} operationId is unique`)
      operationIds.add(operation.operationId!)
      t.ok(operation.summary, `${name} has a summary`)
      t.ok(operation.description, `${name} has a description`)
      t.ok(operation.tags?.length, `${name} has a tag`)
      t.ok(Object.keys(operation.responses).some((status) => status.startsWith('2')), `${name} documents success`)
      t.ok(operation.responses['500'], `${name} documents 500`)
      for (const [status, response] of Object.entries(operation.responses)) {
        t.ok(response.description, `${name} ${status} has a description`)
        t.ok(Object.values(response.content ?? {}).some((media) => media.schema !== undefined), `${name} ${status} has a schema`)
      }
      if (path.startsWith('/api/') || path === '/metrics') {
        const scope = operation['x-required-scope']
        t.ok(scope === 'read' || scope === 'download' || scope === 'admin', `${name} names the scope its key needs`)
        t.same(operation.security, [{ bearerAuth: [scope] }], `${name} declares the bearer key, with that scope`)
        // /metrics sits outside the rate limit, like /health: scrapers poll it.
        for (const status of path === '/metrics' ? ['401'] : ['401', '429']) {
          t.same(operation.responses[status]?.content?.['application/json']?.schema, { $ref: '#/components/schemas/ErrorResponse' }, `${name} ${status} is an ErrorResponse`)
        }
      } else {
        t.same(operation.security, [], `${name} is open`)
      }
    }
  }
  t.ok(operationIds.size >= 4, 'the document lists the routes')
})
