import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../src/config.js'
import { BlockStore } from '../src/providers/block-store.js'
import { ProviderRegistry } from '../src/providers/provider-registry.js'
import { TokenStore } from '../src/providers/token-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The providers, each behind its own limiter with backoff and a health state. */
    providers: ProviderRegistry
  }
}

export interface ProviderBackoffOptions {
  config: Pick<Config, 'providers' | 'providerSettings' | 'hubCacheDir'>
  now?: () => number
}

async function providerBackoffPlugin (app: FastifyInstance, { config, now }: ProviderBackoffOptions): Promise<void> {
  const registry = new ProviderRegistry(config.providers, {
    ...(now === undefined ? {} : { now }),
    settings: config.providerSettings,
    tokens: new TokenStore(config.providerSettings.tokensFile),
    blocks: new BlockStore(config.hubCacheDir),
    onSecret: (token) => app.secrets.add(token)
  })
  app.decorate('providers', registry)
  app.addHook('onClose', async () => {
    for (const summary of registry.list()) await registry.get(summary.name).provider.limiter.stop({ dropWaitingJobs: true }).catch(() => {})
  })
}

export default fp(providerBackoffPlugin, { name: 'provider-backoff' })
