import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { RouteOptions } from 'fastify'
import { declaredScope } from '../plugins/auth.js'
import { errorRef, routeNotFound } from '../plugins/errors.js'
import { ProviderSummarySchema } from '../src/providers/provider-summary.js'
import cacheRoutes from './cache.js'
import downloadEventRoutes from './download-events.js'
import downloadRoutes from './downloads.js'
import infoRoutes from './info.js'
import limitRoutes from './limits.js'
import modelRoutes from './models.js'
import providerRoutes from './providers.js'
import { ProviderCheck } from './schemas/providers.js'
import systemRoutes from './system.js'

/**
 * Everything under /api: rate limit first (so rejected keys count too), then the API key and the
 * scope the route declares (`config.scope`; one without is refused). Each route here documents the
 * bearer requirement, its scope and the 401, 403 and 429 answers it can give.
 */
const apiRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', app.rateLimit())
  app.addHook('onRequest', app.requireApiKey)
  app.addHook('preHandler', app.requireRequestScope)

  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.schema === undefined) return
    route.schema.security = [{ bearerAuth: [] }]
    route.schema.response = {
      401: errorRef('The API key is missing or invalid'),
      429: errorRef('Too many requests; wait for Retry-After seconds'),
      ...(route.schema.response as object)
    }
  })
  app.addHook('onRoute', declaredScope)

  // An unknown /api path still asks for the key first, so the 404 reveals nothing to strangers.
  app.setNotFoundHandler(routeNotFound)

  // Shared by the provider and system-status routes.
  app.addSchema(ProviderSummarySchema)
  app.addSchema(ProviderCheck)

  await app.register(infoRoutes)
  await app.register(downloadRoutes)
  await app.register(downloadEventRoutes)
  await app.register(modelRoutes)
  await app.register(providerRoutes)
  await app.register(systemRoutes)
  await app.register(limitRoutes)
  await app.register(cacheRoutes)
}

export default apiRoutes
