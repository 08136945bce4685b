import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../src/config.js'
import { SERVICE_NAME, VERSION } from '../src/service-info.js'

export interface SwaggerOptions {
  config: Pick<Config, 'docsPublic'>
}

const DESCRIPTION = [
  'modeldepot manages Hugging Face models on a machine and watches the AI providers behind them.',
  'Every route under /api needs `Authorization: Bearer <API_KEY>`. Every error answers with the ErrorResponse shape.',
  'Each operation names the scope its key needs (`x-required-scope`, and the scope of its bearerAuth security): `read` (every GET, event streams, plans, model validation), `download` (start and cancel downloads, provider checks; includes read) or `admin` (everything; includes both). A key without it is answered 403 MD_FORBIDDEN with `details.required_scope`. The keys of API_KEY are admin keys; API_KEYS_FILE gives keys names and scopes.'
].join('\n\n')

interface OpenApiRequestBody { required?: boolean, content?: Record<string, { schema?: { anyOf?: Array<{ type?: string }> } }> }
interface OpenApiDocument { paths?: Record<string, Record<string, { requestBody?: OpenApiRequestBody }>> }

// @fastify/swagger marks every body required, but a body that may be null (parameters that may come
// in the query string instead) is optional, and generated clients must not demand one.
function markOptionalBodies (document: OpenApiDocument): OpenApiDocument {
  for (const operations of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      const schema = operation.requestBody?.content?.['application/json']?.schema
      if (operation.requestBody !== undefined && schema?.anyOf?.some((option) => option.type === 'null') === true) operation.requestBody.required = false
    }
  }
  return document
}

async function swaggerPlugin (app: FastifyInstance, { config }: SwaggerOptions): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: SERVICE_NAME, version: VERSION, description: DESCRIPTION, license: { name: 'MIT', identifier: 'MIT' } },
      servers: [{ url: 'http://localhost:8787', description: 'A local modeldepot' }],
      tags: [
        { name: 'health', description: 'Liveness and readiness for orchestrators' },
        { name: 'models', description: 'Download models into the Hugging Face cache, watch the downloads, list and delete what is cached' },
        { name: 'providers', description: 'The AI providers behind the stack: health, backoff, catalogues, tokens, diagnostics' },
        { name: 'system', description: 'What this modeldepot is and how it is set up' }
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'One of the keys set in API_KEY (admin keys) or API_KEYS_FILE (named keys with scopes: read, download, admin)' }
        }
      }
    },
    transformObject: (documentObject) => markOptionalBodies(('openapiObject' in documentObject ? documentObject.openapiObject : {}) as OpenApiDocument) as never,
    // Shared schemas keep their $id as their name in components.schemas (ErrorResponse, …).
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}` }
  })

  // A scope of their own, so the hooks guard only the docs routes.
  await app.register(async (docs) => {
    if (!config.docsPublic) {
      // Behind the key they are limited like /api, so the key cannot be guessed here at full speed instead.
      docs.addHook('onRequest', docs.rateLimit())
      docs.addHook('onRequest', docs.requireApiKey)
      // The docs' routes are @fastify/swagger-ui's: they are given the scope they need here.
      docs.addHook('onRoute', (route) => { route.config = { ...route.config, scope: 'read' } })
    }
    await docs.register(swaggerUi, { routePrefix: '/docs' })
  })
}

export default fp(swaggerPlugin, { name: 'swagger', dependencies: ['auth', 'errors', 'rate-limit'] })
