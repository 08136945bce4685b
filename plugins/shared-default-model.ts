import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { SharedDefaultModel } from '../src/cache/default-model-store.js'
import type { Config } from '../src/config.js'

export interface SharedDefaultModelOptions {
  config: Pick<Config, 'redis'>
}

/** With REDIS_URL, the default model is the cluster's: kept in Redis, read from it by every replica. */
async function sharedDefaultModelPlugin (app: FastifyInstance, { config }: SharedDefaultModelOptions): Promise<void> {
  if (app.redis !== undefined) app.defaultModel.share(new SharedDefaultModel(app.redis, config.redis.keyPrefix))
}

export default fp(sharedDefaultModelPlugin, { name: 'shared-default-model', dependencies: ['redis', 'downloads'] })
