import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../src/config.js'
import { BlockStore } from '../src/providers/block-store.js'
import { LimiterConnection } from '../src/providers/provider-limiter.js'
import { ProviderRecovery } from '../src/providers/provider-recovery.js'
import { ProviderRegistry } from '../src/providers/provider-registry.js'
import { SharedProviderState } from '../src/providers/shared-provider-state.js'
import { TokenStore } from '../src/providers/token-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The providers, each behind its own limiter with backoff and a health state. */
    providers: ProviderRegistry
  }
}

export interface ProviderBackoffOptions {
  config: Pick<Config, 'providers' | 'providerSettings' | 'stateDir' | 'redis'>
  now?: () => number
}

/** How often cooldowns are looked at for one that has ended. */
const RECOVERY_LOOK_MS = 1000

async function providerBackoffPlugin (app: FastifyInstance, { config, now }: ProviderBackoffOptions): Promise<void> {
  // With REDIS_URL the providers' state is the cluster's: shared health, tokens and blocks, clustered limiters.
  const redis = app.redis
  const prefix = config.redis.keyPrefix
  const connection = redis === undefined ? undefined : new LimiterConnection(redis)
  const log = app.log.child({ component: 'providers' })
  const registry = new ProviderRegistry(config.providers, {
    ...(now === undefined ? {} : { now }),
    settings: config.providerSettings,
    // Through the app's outbound dispatcher (the proxy), the Hub's metadata calls included.
    fetch: app.outbound.fetch,
    tokens: new TokenStore(config.providerSettings.tokensFile),
    blocks: new BlockStore(config.stateDir),
    onSecret: (token) => app.secrets.add(token),
    ...(redis === undefined
      ? {}
      : {
          shared: new SharedProviderState(redis, prefix),
          limiterCluster: (name: string) => ({ connection: connection!, id: `${prefix}provider:${name}`, warn: (message: string, err?: unknown) => log.warn({ provider: name, err }, message) })
        })
  })
  app.decorate('providers', registry)
  // Read-through: what another replica changed and answered is what this one answers, from this request on.
  if (redis !== undefined) {
    app.addHook('preHandler', async (request) => {
      if (request.url.startsWith('/api/')) await registry.sync()
    })
  }
  // An idle node's providers recover by themselves: a cooldown that ended is followed by one probe.
  const recovery = new ProviderRecovery({
    providers: () => registry.list().map((summary) => registry.get(summary.name).provider),
    sync: async () => registry.sync(),
    ...(now === undefined ? {} : { now }),
    onProbe: (provider, status) => log.info({ provider, status }, 'probed after its cooldown')
  })
  recovery.start(RECOVERY_LOOK_MS)
  app.addHook('onClose', async () => {
    await recovery.stop()
    for (const summary of registry.list()) await registry.get(summary.name).provider.limiter.stop()
    connection?.close()
  })
}

export default fp(providerBackoffPlugin, { name: 'provider-backoff', dependencies: ['redis'] })
