import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { systemStatus, SystemStatusSchema } from '../src/status/system-status.js'

const systemRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/system-status', {
    config: { scope: 'read' },
    schema: {
      operationId: 'getSystemStatus',
      summary: 'The state of the whole node',
      description: [
        'What is healthy (overall_health with its reasons), the providers, the models on disk and the downloads,',
        'the machine (disk, memory, CPU, event-loop delay), the upstream errors of the last five minutes with the action taken, and how fast things are.',
        'Cheap to call often: the disk scan is kept and refreshed when a download or delete changes the disk, or after 30 s.'
      ].join(' '),
      tags: ['system'],
      response: { 200: { ...SystemStatusSchema, description: 'The state of the node' } }
    }
  }, async () => systemStatus({
    cacheDir: app.config.hubCacheDir,
    startedAt: app.startedAt,
    providers: app.providers,
    downloads: app.downloads,
    defaultModel: app.defaultModel,
    cachedScan: app.cachedScan,
    requests: app.requestStats,
    eventLoopDelay: app.eventLoopDelay,
    stateStore: { connection: app.redis?.status },
    recentEvents: () => app.cacheControl.recentEvictions.map((eviction) => ({
      at: eviction.at,
      kind: 'cache_eviction',
      model_id: eviction.model_id,
      message: `evicted ${eviction.model_id} (${eviction.freed_bytes} bytes, last used ${eviction.last_used_at ?? 'never'}) to make room for ${eviction.for_model}`
    }))
  }))
}

export default systemRoutes
