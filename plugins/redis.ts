import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { maskedRedisUrl, type Config } from '../src/config.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The client of the Redis that replicas share, or undefined without REDIS_URL (everything in memory). */
    redis: Redis | undefined
  }
}

export interface RedisOptions {
  config: Pick<Config, 'redis'>
}

// Redis answers in well under a millisecond; a command that takes this long is from a Redis that hangs.
const COMMAND_TIMEOUT_MS = 2000
// Between reconnection attempts: quick at first, then every 2 s for as long as Redis is away.
const reconnectDelay = (attempt: number): number => Math.min(attempt * 100, 2000)

/**
 * One client for the app. The app starts whether Redis answers or not: the client connects in the
 * background and keeps trying, and while it is not connected a command fails at once (no offline
 * queue, no retries of a command), so a request never waits for Redis to come back.
 */
async function redisPlugin (app: FastifyInstance, { config }: RedisOptions): Promise<void> {
  const { url } = config.redis
  if (url === undefined) {
    app.decorate('redis', undefined)
    return
  }
  const log = app.log.child({ component: 'redis', redis_url: maskedRedisUrl(url) })
  // Loaded only with REDIS_URL: a server that keeps everything in memory does not hold it (idle RSS).
  const { Redis } = await import('ioredis')
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: COMMAND_TIMEOUT_MS,
    retryStrategy: reconnectDelay
  })
  // Once per outage, not once per reconnection attempt; a lost connection says so before the next attempt fails.
  let down = false
  let closing = false
  const unreachable = (err?: Error): void => {
    if (down || closing) return
    down = true
    log.warn(err === undefined ? {} : { err }, 'Redis is unreachable: the shared rate limit is not applied and readiness answers 503 until it answers again')
  }
  redis.on('ready', () => {
    log.info(down ? 'Redis is reachable again' : 'connected to Redis')
    down = false
  })
  redis.on('error', (err: Error) => unreachable(err))
  redis.on('close', () => unreachable())
  app.decorate('redis', redis)
  app.addHook('onClose', async () => {
    closing = true
    // quit() waits for Redis to answer, which a Redis that is away never does.
    if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect())
    else redis.disconnect()
  })
}

export default fp(redisPlugin, { name: 'redis' })
