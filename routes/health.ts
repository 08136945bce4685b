import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { Type } from '../src/type-builder.js'
import type { Static } from 'typebox'
import { CacheWritability } from '../src/cache/cache-writability.js'
import type { LogLevel } from '../src/config.js'
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

// Health routes stay open and outside the rate limit: orchestrators poll them. At LOG_LEVEL=info their
// requests are not logged (a probe every few seconds is noise, and its two log lines, redacted and
// scrubbed, cost more than the answer: issue 18); debug and trace log them, and warnings still show.
const probeLogLevel = (level: LogLevel): LogLevel | undefined => level === 'info' ? 'warn' : undefined
const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(HealthSchema)
  const logLevel = probeLogLevel(app.config.logLevel)
  const quiet = logLevel === undefined ? {} : { logLevel }
  // Checked on a timer, not per call: /health must cost no more than a hello-world (issue 18). Its
  // changes are logged, so a cache that stopped being writable shows in the logs without a line per probe.
  const writability = new CacheWritability(app.config.hubCacheDir, app.config.healthCheckIntervalMs, (check) => {
    if (check.ok) app.log.info('the model cache directory is writable')
    else app.log.warn({ reason: check.reason }, 'the model cache directory is not writable: /health and /health/ready answer 503')
  })
  await writability.start()
  app.addHook('onClose', async () => { writability.stop() })

  const snapshot = (reason?: string): Health => ({
    status: reason === undefined ? 'ok' : 'unavailable',
    timestamp: new Date().toISOString(),
    version: VERSION,
    uptime_s: uptimeSeconds(app.startedAt),
    ...(reason === undefined ? {} : { reason })
  })

  const notReadyReason = (withSharedState: boolean): string | undefined => {
    if (app.closing) return 'the server is shutting down'
    const check = writability.current()
    if (!check.ok) return check.reason
    if (withSharedState && app.redis !== undefined && app.redis.status !== 'ready') {
      return `Redis (REDIS_URL) is not connected (${app.redis.status}): the state replicas share is out of reach`
    }
    return undefined
  }
  const answer = (withSharedState: boolean) => async (_request: unknown, reply: FastifyReply): Promise<Health> => {
    const reason = notReadyReason(withSharedState)
    if (reason !== undefined) reply.code(503)
    return snapshot(reason)
  }

  // Redis away is no reason to restart a replica (the Docker HEALTHCHECK calls /health): only readiness says it.
  app.get('/health', {
    ...quiet,
    config: { answersWhileClosing: true },
    schema: {
      operationId: 'getHealth',
      summary: 'Overall health',
      description: 'Answers 200 when the server is up and the model cache directory is writable (as last checked: at start, then every HEALTH_CHECK_INTERVAL_MS), 503 with a reason otherwise (also from the start of a graceful shutdown). The Docker HEALTHCHECK calls it.',
      tags: ['health'],
      security: [],
      response: { 200: healthRef('Healthy'), 503: healthRef('Not healthy; `reason` says why') }
    }
  }, answer(false))

  // Alive while it drains: a failed liveness check would have it killed mid-shutdown.
  app.get('/health/live', {
    ...quiet,
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
    ...quiet,
    config: { answersWhileClosing: true },
    schema: {
      operationId: 'getReadiness',
      summary: 'Readiness',
      description: 'Answers 200 when the model cache directory can be created and written (as last checked: at start, then every HEALTH_CHECK_INTERVAL_MS) and, with REDIS_URL, Redis is connected; 503 with a reason otherwise (also from the start of a graceful shutdown). Route traffic only when it is 200.',
      tags: ['health'],
      security: [],
      response: { 200: healthRef('Ready'), 503: healthRef('Not ready; `reason` says why') }
    }
  }, answer(true))
}

export default healthRoutes
