import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '../src/type-builder.js'
import { errorRef } from '../plugins/errors.js'
import { RefTo } from '../src/json-schema.js'
import { mergeParams, requiredModelId } from './download-input.js'
import { CacheStateSchema, PinParams, PinResult, PruneParams, PruneResultSchema } from './schemas/cache.js'

// The disk side of the cache. GET /cache reads; pin, unpin and prune change what is kept (admin).
const cacheRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(PinParams)
  app.addSchema(PruneParams)

  app.get('/cache', {
    config: { scope: 'read' },
    schema: {
      operationId: 'getCache',
      summary: 'Cache size, quota and eviction order',
      description: [
        'How much the hub cache holds (every file under it), the quota (CACHE_MAX_BYTES) and watermarks, the disk,',
        'and every cached model in the order the quota would evict them, with its size, last use and what protects it.'
      ].join(' '),
      tags: ['cache'],
      response: {
        200: { ...CacheStateSchema, description: 'The cache' },
        503: errorRef('MD_STATE_STORE_UNAVAILABLE: REDIS_URL is set and Redis does not answer (Retry-After)')
      }
    }
  }, async () => app.cacheControl.state())

  app.put('/models/pin', {
    config: { scope: 'admin' },
    schema: {
      operationId: 'pinModel',
      summary: 'Pin a model: never evicted',
      description: 'A pinned model is never evicted by the cache quota. It must be in the cache or downloading. Pins survive restarts and, with REDIS_URL, hold on every replica. model_id in the query string or a JSON body.',
      tags: ['cache'],
      querystring: RefTo(PinParams),
      body: Type.Union([RefTo(PinParams), Type.Null()]),
      response: {
        200: { ...PinResult, description: 'Pinned' },
        404: errorRef('MD_MODEL_NOT_CACHED: the model is neither in the cache nor downloading'),
        503: errorRef('MD_STATE_STORE_UNAVAILABLE: REDIS_URL is set and Redis does not answer; nothing changed (Retry-After)')
      }
    }
  }, async (request) => app.cacheControl.pin(requiredModelId(mergeParams(request.query, request.body))))

  app.delete('/models/pin', {
    config: { scope: 'admin' },
    schema: {
      operationId: 'unpinModel',
      summary: 'Unpin a model',
      description: 'The model may be evicted again. Unpinning a model that is not pinned answers the same. model_id in the query string or a JSON body.',
      tags: ['cache'],
      querystring: RefTo(PinParams),
      body: Type.Union([RefTo(PinParams), Type.Null()]),
      response: {
        200: { ...PinResult, description: 'Not pinned' },
        503: errorRef('MD_STATE_STORE_UNAVAILABLE: REDIS_URL is set and Redis does not answer; nothing changed (Retry-After)')
      }
    }
  }, async (request) => app.cacheControl.unpin(requiredModelId(mergeParams(request.query, request.body))))

  app.post('/cache/prune', {
    config: { scope: 'admin' },
    schema: {
      operationId: 'pruneCache',
      summary: 'Remove what no model needs',
      description: [
        'Blobs no snapshot links to, partial downloads and temporaries, and lock files no process holds, each older than an hour;',
        'with detached=true also snapshots no ref points to, with the blobs only they use. Models with a job that has not ended are left alone.',
        'A dry run unless dry_run=false: it lists the items and changes nothing on disk. Parameters in the query string or a JSON body.'
      ].join(' '),
      tags: ['cache'],
      querystring: RefTo(PruneParams),
      body: Type.Union([RefTo(PruneParams), Type.Null()]),
      response: {
        200: { ...PruneResultSchema, description: 'What would go (dry run) or went' },
        503: errorRef('MD_STATE_STORE_UNAVAILABLE: REDIS_URL is set and Redis does not answer (Retry-After)')
      }
    }
  }, async (request) => {
    const params = mergeParams(request.query, request.body)
    const result = await app.cacheControl.prune({ dryRun: params.dry_run !== false, detached: params.detached === true })
    if (!result.dry_run) app.cachedScan.invalidate()
    return result
  })
}

export default cacheRoutes
