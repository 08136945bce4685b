import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '../src/type-builder.js'
import { errorRef } from '../plugins/errors.js'

/** Prometheus text; behind an API key with the read scope (and the rate limit) unless METRICS_PUBLIC=true. */
const metricsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const open = app.config.metricsPublic
  app.get('/metrics', {
    config: { scope: 'read' },
    // Behind the key it is limited like /api, so the key cannot be guessed here at full speed instead.
    onRequest: open ? [] : [app.rateLimit(), app.requireApiKey],
    schema: {
      operationId: 'getMetrics',
      summary: 'Prometheus metrics',
      description: [
        'HTTP request durations by route and status, download bytes, active and queued jobs, provider status, latency and 429 counts,',
        'cache size and free disk, in the Prometheus text format. Needs an API key with the `read` scope unless METRICS_PUBLIC=true.'
      ].join(' '),
      tags: ['system'],
      security: open ? [] : [{ bearerAuth: ['read'] }],
      ...(open ? {} : { 'x-required-scope': 'read' }),
      response: {
        200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: Type.String() } } },
        ...(open ? {} : { 401: errorRef('The API key is missing or invalid'), 429: errorRef('Too many requests; wait for Retry-After seconds') })
      }
    }
  }, async (_request, reply) => {
    reply.type(app.metrics.contentType)
    return app.metrics.metrics()
  })
}

export default metricsRoutes
