import bearerAuth from '@fastify/bearer-auth'
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { ApiKeys, bearerToken } from '../src/auth/api-keys.js'
import type { Config } from '../src/config.js'
import { MdUnauthorizedError } from '../src/errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    apiKeys: ApiKeys
    /** onRequest hook: rejects a request without a valid API key (a no-op when auth is disabled). */
    requireApiKey: onRequestHookHandler
  }
}

export interface AuthOptions {
  config: Pick<Config, 'apiKeys' | 'authDisabled'>
}

async function authPlugin (app: FastifyInstance, { config }: AuthOptions): Promise<void> {
  const apiKeys = new ApiKeys(config.apiKeys)
  app.decorate('apiKeys', apiKeys)

  if (config.authDisabled) {
    app.log.warn('AUTH_DISABLED=true: every /api route is open to anyone who can reach this port; do not expose it beyond a trusted network')
    app.decorate('requireApiKey', function noAuth (_request: FastifyRequest, _reply: FastifyReply, done: () => void) { done() })
    return
  }

  // We log rejections ourselves (at warn, without the key): the plugin's own logging only works
  // with loggers whose methods are own properties, which pino's are not.
  await app.register(bearerAuth, {
    keys: [],
    // The plugin trims what follows "Bearer "; we take only the exact form (see bearerToken).
    auth: (_key: string, request: FastifyRequest) => apiKeys.matches(bearerToken(request.headers.authorization) ?? ''),
    addHook: false
  })

  app.decorate('requireApiKey', function requireApiKey (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) {
    app.verifyBearerAuth!(request, reply, (err?: Error) => {
      if (err === undefined) return done()
      const invalid = request.headers.authorization !== undefined
      request.log.warn({ reason: invalid ? 'invalid API key or malformed Authorization header' : 'no Authorization header' }, 'request rejected: unauthorized')
      reply.header('www-authenticate', invalid ? 'Bearer realm="modeldepot", error="invalid_token"' : 'Bearer realm="modeldepot"')
      done(new MdUnauthorizedError())
    })
  })
}

export default fp(authPlugin, { name: 'auth' })
