import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { DestinationStream } from 'pino'
import authPlugin from '../plugins/auth.js'
import cacheControlPlugin from '../plugins/cache-control.js'
import downloadsPlugin from '../plugins/downloads.js'
import errorsPlugin, { BODY_LIMIT_BYTES, frameworkError } from '../plugins/errors.js'
import eventStreamsPlugin from '../plugins/event-streams.js'
import metricsPlugin from '../plugins/metrics.js'
import progressStorePlugin from '../plugins/progress-store.js'
import providerBackoffPlugin from '../plugins/provider-backoff.js'
import rateLimitPlugin from '../plugins/rate-limit.js'
import redisPlugin from '../plugins/redis.js'
import sharedDefaultModelPlugin from '../plugins/shared-default-model.js'
import swaggerPlugin from '../plugins/swagger.js'
import apiRoutes from '../routes/api.js'
import healthRoutes from '../routes/health.js'
import metricsRoutes from '../routes/metrics.js'
import { prepareStateDir } from './cache/state-dir.js'
import type { Config } from './config.js'
import { MdShuttingDownError } from './errors.js'
import { createLogger, SecretList } from './logger.js'
import { Outbound } from './outbound/outbound-dispatcher.js'
import { bodiesTakenAsSent, sharedSerializers } from './schema-compilers.js'
import type { serverTimeoutOptions } from './server-timeouts.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    /** Secret values the logs hide; tokens rotated at run time are added. */
    secrets: SecretList
    /** When this app was built, in ms since the epoch. */
    startedAt: number
    /** True from the start of a graceful shutdown. */
    closing: boolean
    /** Every outbound HTTP request goes through it (Hub, CDN, providers, callbacks): the proxy settings live here. */
    outbound: Outbound
  }
  interface FastifyContextConfig {
    /** The route still answers during a shutdown, in its own shape (the health checks). */
    answersWhileClosing?: boolean
  }
}

export interface BuildAppOptions {
  /** Where logs go; stdout when absent. Tests pass a stream to read them. */
  logDestination?: DestinationStream
  /** The clock provider cooldowns run on; tests move it instead of waiting. */
  now?: () => number
  /** The listening server's timeouts (server.ts passes them; injected requests need none). */
  server?: ReturnType<typeof serverTimeoutOptions>
}

// An inbound x-request-id is kept (so a caller can follow its request) only if it is harmless in a log line.
const REQUEST_ID = /^[\w.:@-]{1,128}$/
function requestId (request: IncomingMessage): string {
  const inbound = request.headers['x-request-id']
  return typeof inbound === 'string' && REQUEST_ID.test(inbound) ? inbound : randomUUID()
}

const trustHops = (hops: number) => (_address: string, hop: number): boolean => hop < hops

/** Builds the whole app, ready to inject into or listen: plugins first, then routes. */
export async function buildApp (config: Config, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const secrets = new SecretList(config.secrets)
  const app = Fastify({
    loggerInstance: createLogger(config, secrets, options.logDestination) as FastifyBaseLogger,
    genReqId: requestId,
    // A hop count means "trust the n proxies nearest to us" (proxy-addr's rule; Fastify's types omit numbers).
    trustProxy: typeof config.trustProxy === 'number' ? trustHops(config.trustProxy) : config.trustProxy,
    bodyLimit: BODY_LIMIT_BYTES,
    // Refused by our own hook below instead, in the common error shape.
    return503OnClosing: false,
    frameworkErrors: frameworkError,
    schemaController: { compilersFactory: { buildValidator: bodiesTakenAsSent(), buildSerializer: sharedSerializers() } },
    ...options.server
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.decorate('config', config)
  app.decorate('secrets', secrets)
  app.decorate('startedAt', Date.now())
  // From the start of a shutdown, a request that still arrives (on a kept-alive connection, or before
  // the listener closes) is refused with 503 MD_SHUTTING_DOWN, as every error is answered, and its
  // connection closed; those already under way are finished. First of the preClose hooks. The health
  // checks answer in their own shape, so an orchestrator reads the shutdown as "not ready".
  // The hooks every request runs are plain callbacks, not async functions: a promise per hook per
  // request is a measurable share of what /health costs (issue 18).
  app.decorate('closing', false)
  app.addHook('preClose', async () => { app.closing = true })
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    if (app.closing && request.routeOptions.config.answersWhileClosing !== true) done(new MdShuttingDownError())
    else done()
  })
  // An answer sent once the shutdown has begun (a long poll its job's stop woke, a request that was
  // under way) closes its connection. Kept alive, it would go idle after the server closed its idle
  // connections, and the shutdown would wait for it until KEEP_ALIVE_TIMEOUT_MS (72 s) or be killed.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (app.closing) reply.header('connection', 'close')
    done(null, payload)
  })

  // Before the stores that read STATE_DIR (blocks, jobs journal, default model) are made; moves an
  // old-layout {cache}/.modeldepot/ there.
  await prepareStateDir(config.hubCacheDir, config.stateDir, app.log)
  // Made once, here, from the config: the plugins that send requests take it from the app.
  const outbound = new Outbound(config.proxy)
  app.decorate('outbound', outbound)
  app.addHook('onClose', async () => outbound.close())
  await app.register(errorsPlugin)
  await app.register(authPlugin, { config })
  await app.register(redisPlugin, { config })
  await app.register(rateLimitPlugin, { config })
  await app.register(swaggerPlugin, { config })
  await app.register(providerBackoffPlugin, { config, ...(options.now === undefined ? {} : { now: options.now }) })
  await app.register(progressStorePlugin, { config })
  await app.register(downloadsPlugin, { config })
  await app.register(sharedDefaultModelPlugin, { config })
  await app.register(eventStreamsPlugin, { config })
  await app.register(metricsPlugin)
  await app.register(cacheControlPlugin, { config })

  await app.register(healthRoutes)
  await app.register(metricsRoutes)
  await app.register(apiRoutes, { prefix: '/api' })
  return app
}
