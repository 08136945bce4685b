import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '../src/type-builder.js'
import type { Static } from 'typebox'
import { errorRef } from '../plugins/errors.js'
import type { Limits as LimitsValue } from '../src/downloads/limits-store.js'
import { LiteralUnion, Nullable, RefTo, type Expect, type SameShape } from '../src/json-schema.js'
import { byteRate } from './download-input.js'

const Limits = Type.Object({
  max_bytes_per_s: Nullable(Type.Integer(), 'The server\'s cap on download bytes per second, for all its jobs together (with REDIS_URL, for all replicas together); null for none'),
  source: LiteralUnion(['state', 'env'] as const, { description: '`state`: set through PATCH (kept across restarts); `env`: DOWNLOAD_MAX_BYTES_PER_S' }),
  updated_at: Nullable(Type.String({ format: 'date-time' }), 'When it was last set through PATCH')
}, { $id: 'Limits', title: 'Limits', additionalProperties: false })
export type LimitsAgree = Expect<SameShape<Static<typeof Limits>, LimitsValue>>

const limitRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(Limits)

  app.get('/limits', {
    config: { scope: 'read' },
    schema: {
      operationId: 'getLimits',
      summary: 'The operator\'s limits',
      description: 'The server\'s cap on download bytes per second (DOWNLOAD_MAX_BYTES_PER_S, or the last PATCH). A job also keeps its own `max_bytes_per_s`: it gets the smaller of the two.',
      tags: ['system'],
      response: { 200: RefTo(Limits, { description: 'The limits now' }) }
    }
  }, async () => app.limits.get())

  app.patch('/limits', {
    config: { scope: 'admin' },
    schema: {
      operationId: 'setLimits',
      summary: 'Change the operator\'s limits',
      description: [
        'Sets the server\'s cap on download bytes per second (at least 65536; 0 or null removes it), for the downloads under way too, within a second.',
        'Kept across restarts ({STATE_DIR}/limits.json, and Redis with REDIS_URL, where it holds for every replica together).'
      ].join(' '),
      tags: ['system'],
      body: Type.Object({
        max_bytes_per_s: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: 'Bytes per second, at least 65536; 0 or null for no cap' })
      }, { additionalProperties: false }),
      response: {
        200: RefTo(Limits, { description: 'The limits now' }),
        400: errorRef('A cap below 65536 bytes per second'),
        503: errorRef('MD_STATE_STORE_UNAVAILABLE: REDIS_URL is set and Redis does not answer; nothing changed (Retry-After)')
      }
    }
  }, async (request) => app.limits.set(byteRate(request.body.max_bytes_per_s, 'max_bytes_per_s')))
}

export default limitRoutes
