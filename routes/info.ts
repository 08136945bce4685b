import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '../src/type-builder.js'
import { maskedRedisUrl } from '../src/config.js'
import { maskedProxyUrl } from '../src/outbound/proxy-settings.js'
import { SERVICE_NAME, uptimeSeconds, VERSION } from '../src/service-info.js'

const Info = Type.Object({
  name: Type.String({ examples: ['modeldepot'] }),
  version: Type.String(),
  uptime_s: Type.Number({ description: 'Seconds since the server started' }),
  node_version: Type.String(),
  settings: Type.Object({
    cache_dir: Type.String({ description: 'The Hugging Face hub cache directory models are stored in' }),
    hf_endpoint: Type.String({ description: 'The Hub the models come from (HF_ENDPOINT)' }),
    hf_token_set: Type.Boolean({ description: 'Whether HF_TOKEN is set; the token itself is never shown' }),
    default_model: Type.Union([Type.String(), Type.Null()], { description: 'DEFAULT_MODEL, or null' }),
    rate_limit_per_minute: Type.Integer({ description: 'Requests per minute allowed per API key (or per client IP without a valid key)' }),
    auth_enabled: Type.Boolean({ description: 'false only when AUTH_DISABLED=true' }),
    docs_public: Type.Boolean({ description: 'Whether /docs is open without a key' }),
    redis_url: Type.Union([Type.String(), Type.Null()], { description: 'REDIS_URL with its password masked (****), or null when everything is kept in memory' }),
    proxy: Type.Object({
      https_proxy: Type.Union([Type.String(), Type.Null()], { description: 'The proxy for https:// addresses (HTTPS_PROXY or https_proxy), user and password masked (****); null when unset' }),
      http_proxy: Type.Union([Type.String(), Type.Null()], { description: 'The proxy for http:// addresses (HTTP_PROXY or http_proxy), masked the same way; null when unset' }),
      no_proxy: Type.Union([Type.String(), Type.Null()], { description: 'The hosts reached without the proxy (NO_PROXY or no_proxy); null when unset' })
    }, { additionalProperties: false, description: 'The outbound proxy every request to the Hub, its CDN, the providers and the callbacks goes through' })
  }, { additionalProperties: false })
}, { title: 'Info', additionalProperties: false })

const infoRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/info', {
    config: { scope: 'read' },
    schema: {
      operationId: 'getInfo',
      summary: 'Service information',
      description: 'The name, version and uptime of this modeldepot, and the non-secret settings a user needs to see. Secrets are never shown.',
      tags: ['system'],
      response: { 200: { ...Info, description: 'The service and its settings' } }
    }
  }, async () => {
    const { config } = app
    return {
      name: SERVICE_NAME,
      version: VERSION,
      uptime_s: uptimeSeconds(app.startedAt),
      node_version: process.version,
      settings: {
        cache_dir: config.hubCacheDir,
        hf_endpoint: config.hfEndpoint,
        hf_token_set: config.hfToken !== undefined,
        default_model: config.defaultModel ?? null,
        rate_limit_per_minute: config.rateLimitPerMinute,
        auth_enabled: !config.authDisabled,
        docs_public: config.docsPublic,
        redis_url: config.redis.url === undefined ? null : maskedRedisUrl(config.redis.url),
        proxy: {
          https_proxy: config.proxy.httpsProxy === undefined ? null : maskedProxyUrl(config.proxy.httpsProxy),
          http_proxy: config.proxy.httpProxy === undefined ? null : maskedProxyUrl(config.proxy.httpProxy),
          no_proxy: config.proxy.noProxy ?? null
        }
      }
    }
  })
}

export default infoRoutes
