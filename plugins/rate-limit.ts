import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { bearerToken } from '../src/auth/api-keys.js'
import type { Config } from '../src/config.js'
import { MdRateLimitedError } from '../src/errors.js'
import { sharedRateLimitStore } from './rate-limit-redis-store.js'
import { BurstSafeStore } from './rate-limit-store.js'

export interface RateLimitOptions {
  config: Pick<Config, 'rateLimitPerMinute' | 'redis'>
}

/**
 * Registers the limiter without attaching it anywhere: the /api scope adds `app.rateLimit()` as its
 * first onRequest hook, before auth, so a flood of bad tokens is throttled too.
 */
async function rateLimitPlugin (app: FastifyInstance, { config }: RateLimitOptions): Promise<void> {
  // With Redis, one budget per client whichever replica answers; without, this process's own counters.
  const store = app.redis === undefined
    ? BurstSafeStore
    : sharedRateLimitStore(app.redis, `${config.redis.keyPrefix}rate-limit:`, app.log.child({ component: 'rate-limit' }))
  await app.register(rateLimit, {
    global: false,
    max: config.rateLimitPerMinute,
    timeWindow: 60_000,
    // A valid key gets its own bucket wherever it comes from; anything else (no key, a wrong key)
    // shares its client IP's bucket, so random tokens cannot each open a fresh bucket.
    keyGenerator: (request: FastifyRequest) => app.apiKeys.labelOf(bearerToken(request.headers.authorization) ?? '') ?? `ip:${request.ip}`,
    errorResponseBuilder: (_request, context) => new MdRateLimitedError(context.after),
    store,
    // Redis away: let requests through (and say so once in the log) rather than answer 500 to everything.
    skipOnError: true
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', dependencies: ['auth', 'redis'] })
