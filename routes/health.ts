import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { Type, type Static } from 'typebox'
import { checkCacheDirWritable } from '../src/cache/cache-dir.js'
import { RefTo } from '../src/json-schema.js'
import { uptimeSeconds, VERSION } from '../src/service-info.js'

const HealthSchema = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')], { description: '"ok", or "unavailable" with a reason' }),
  timestamp: Type.String({ format: 'date-time' }),
  version: Type.String(),
  uptime_s: Type.Number({ description: 'Seconds since the server started' }),
  reason: Type.Optional(Type.String({ description: 'Why the service is not ready' }))
}, { $id: 'Health', title: 'Health', additionalProperties: false })
type Health = Static<typeof HealthSchema>

const healthRef = (description: string) => RefTo(HealthSchema, { description })

// Health routes stay open and outside the rate limit: orchestrators poll them.
const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(HealthSchema)

  const snapshot = (reason?: string): Health => ({
    status: reason === undefined ? 'ok' : 'unavailable',
    timestamp: new Date().toISOString(),
    version: VERSION,
    uptime_s: uptimeSeconds(app.startedAt),
    ...(reason === undefined ? {} : { reason })
  })

  const ready = async (_request: unknown, reply: FastifyReply): Promise<Health> => {
    if (app.closing) {
      reply.code(503)
      return snapshot('the server is shutting down')
    }
    const check = await checkCacheDirWritable(app.config.hubCacheDir)
    if (check.ok) return snapshot()
    reply.code(503)
    return snapshot(check.reason)
  }

  app.get('/health', {
    config: { answersWhileClosing: true },
    schema: {
      operationId: 'getHealth',
      summary: 'Overall health',
      description: 'Answers 200 when the server is up and the model cache directory is writable, 503 with a reason otherwise (also from the start of a graceful shutdown). The Docker HEALTHCHECK calls it.',
      tags: ['health'],
      security: [],
      response: { 200: healthRef('Healthy'), 503: healthRef('Not healthy; `reason` says why') }
    }
  }, ready)

  // Alive while it drains: a failed liveness check would have it killed mid-shutdown.
  app.get('/health/live', {
    config: { answersWhileClosing: true },
    schema: {
      operationId: 'getLiveness',
      summary: 'Liveness',
      description: 'Answers 200 while the process can serve requests at all, during a graceful shutdown too (it is finishing requests). Restart the container when it does not.',
      tags: ['health'],
      security: [],
      response: { 200: healthRef('Alive') }
    }
  }, async () => snapshot())

  app.get('/health/ready', {
    config: { answersWhileClosing: true },
    schema: {
      operationId: 'getReadiness',
      summary: 'Readiness',
      description: 'Answers 200 when the model cache directory can be created and written, 503 with a reason otherwise (also from the start of a graceful shutdown). Route traffic only when it is 200.',
      tags: ['health'],
      security: [],
      response: { 200: healthRef('Ready'), 503: healthRef('Not ready; `reason` says why') }
    }
  }, ready)
}

export default healthRoutes
