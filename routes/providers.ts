import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '../src/type-builder.js'
import { errorRef } from '../plugins/errors.js'
import { MdModelNotBlockedError, MdValidationError } from '../src/errors.js'
import { RefTo } from '../src/json-schema.js'
import { RecordedErrorSchema } from '../src/providers/provider-health.js'
import { ProviderSummarySchema } from '../src/providers/provider-summary.js'
import { CatalogueModel, ModelBlock, ProviderCheck } from './schemas/providers.js'

const NameParams = Type.Object({ name: Type.String({ description: 'huggingface, openrouter, openai, or a name from PROVIDERS_FILE' }) })
const notFound = errorRef('No provider by that name')
const ModelIdBody = Type.Object({ model_id: Type.String({ minLength: 1, maxLength: 200 }) })
// With REDIS_URL a settings change is the cluster's: refused, and nothing changed, while Redis is away.
const stateStoreUnavailable = errorRef('MD_STATE_STORE_UNAVAILABLE: REDIS_URL is set and Redis does not answer; nothing changed (Retry-After)')

// The schema asks for at least one character; spaces alone are no model either.
const requiredModelId = (value: string): string => {
  if (value.trim() === '') throw new MdValidationError('model_id is required')
  return value.trim()
}

const providerRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/providers', {
    config: { scope: 'read' },
    schema: {
      operationId: 'listProviders',
      summary: 'All providers, best first',
      description: 'Every provider with its health, limiter and catalogue state: healthy before unhealthy, then by priority, then by latency.',
      tags: ['providers'],
      response: { 200: { description: 'The providers', ...Type.Object({ providers: Type.Array(RefTo(ProviderSummarySchema)) }) } }
    }
  }, async () => ({ providers: app.providers.list() }))

  app.get('/providers/:name', {
    config: { scope: 'read' },
    schema: {
      operationId: 'getProvider',
      summary: 'One provider',
      description: 'Its health (status, latency average and p95, success rate, counts, cooldown, last error), limiter and catalogue state. The token is shown masked.',
      tags: ['providers'],
      params: NameParams,
      response: { 200: RefTo(ProviderSummarySchema, { description: 'The provider' }), 404: notFound }
    }
  }, async (request) => app.providers.summary(request.params.name))

  app.post('/providers/:name/check', {
    config: { scope: 'download' },
    schema: {
      operationId: 'checkProvider',
      summary: 'Preflight a provider',
      description: [
        'Is the token valid (the Hub\'s whoami-v2 with the account and token role; OpenRouter\'s key endpoint; GET /models for OpenAI-compatible servers)',
        'and is the model list reachable.',
        'Each check answers ok, status, latency and message, fix steps in plain words when it fails, and the same check as a curl command.',
        'It runs even while the provider cools down.'
      ].join(' '),
      tags: ['providers'],
      params: NameParams,
      response: { 200: RefTo(ProviderCheck, { description: 'The checks' }), 404: notFound }
    }
  }, async (request) => app.providers.check(request.params.name))

  app.put('/providers/:name/token', {
    config: { scope: 'admin' },
    schema: {
      operationId: 'rotateProviderToken',
      summary: 'Rotate a provider\'s token',
      description: [
        'Checks the new token first (unless validate=false) and refuses it with the check\'s fix steps when it fails, keeping the old one.',
        'On a change the catalogue cache is cleared, health starts over, and the catalogue is fetched again.',
        'With PROVIDER_TOKENS_FILE set the token is kept there (mode 0600) and survives a restart. Only a masked token is ever shown.',
        'With REDIS_URL every replica uses the new token from the moment this answers.'
      ].join(' '),
      tags: ['providers'],
      params: NameParams,
      querystring: Type.Object({ validate: Type.Optional(Type.Boolean({ description: 'Check the token first; default true' })) }),
      body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 4096 }), validate: Type.Optional(Type.Boolean()) }),
      response: {
        200: { description: 'The new token is in use', ...Type.Object({ provider: RefTo(ProviderSummarySchema), check: Type.Union([RefTo(ProviderCheck), Type.Null()]) }) },
        404: notFound,
        422: errorRef('The new token failed its check; the hint says how to fix it, and the old token stays in use'),
        503: stateStoreUnavailable
      }
    }
  }, async (request) => {
    const { name } = request.params
    const check = await app.providers.rotateToken(name, request.body.token.trim(), request.body.validate ?? request.query.validate ?? true)
    return { provider: app.providers.summary(name), check }
  })

  app.get('/providers/:name/models', {
    config: { scope: 'read' },
    schema: {
      operationId: 'listProviderModels',
      summary: 'A provider\'s model catalogue',
      description: [
        'Cached for CATALOGUE_TTL_S seconds; refresh=true fetches it again. When the upstream fails, the last good list is served with stale: true.',
        'Blocked models are left out unless include_blocked=true, which shows them marked.'
      ].join(' '),
      tags: ['providers'],
      params: NameParams,
      querystring: Type.Object({ refresh: Type.Optional(Type.Boolean()), include_blocked: Type.Optional(Type.Boolean()) }),
      response: {
        200: { description: 'The catalogue', ...Type.Object({ provider: Type.String(), models: Type.Array(CatalogueModel), count: Type.Integer(), fetched_at: Type.String({ format: 'date-time' }), stale: Type.Boolean(), from_cache: Type.Boolean() }) },
        404: notFound,
        502: errorRef('The upstream failed and there is no earlier list to serve'),
        503: errorRef('The provider cools down (Retry-After) and there is no earlier list to serve')
      }
    }
  }, async (request) => {
    const { name } = request.params
    const { refresh, include_blocked: includeBlocked } = request.query
    const { catalogue } = app.providers.get(name)
    const list = await catalogue.list(refresh === true)
    const models = list.models
      .map((model) => ({ ...model, blocked: catalogue.blocked(model.id) !== undefined, block_reason: catalogue.blocked(model.id)?.reason ?? null }))
      .filter((model) => includeBlocked === true || !model.blocked)
    return { provider: name, models, count: models.length, fetched_at: list.fetched_at, stale: list.stale, from_cache: list.from_cache }
  })

  app.post('/providers/:name/models/validate', {
    config: { scope: 'read' },
    schema: {
      operationId: 'validateProviderModel',
      summary: 'Is a model available from this provider?',
      description: 'valid, the reason when not, and the closest available ids as alternatives. For the Hub any existing model is valid; for the others, the catalogue decides. A blocked model is not valid.',
      tags: ['providers'],
      params: NameParams,
      body: ModelIdBody,
      response: {
        200: { description: 'The verdict', ...Type.Object({ model_id: Type.String(), valid: Type.Boolean(), reason: Type.Union([Type.String(), Type.Null()]), alternatives: Type.Array(Type.String()) }) },
        404: notFound,
        502: errorRef('The upstream failed and there is no earlier list'),
        503: errorRef('The provider cools down (Retry-After)')
      }
    }
  }, async (request) => {
    const { name } = request.params
    const modelId = requiredModelId(request.body.model_id)
    return { model_id: modelId, ...await app.providers.get(name).catalogue.validate(modelId) }
  })

  app.post('/providers/:name/models/block', {
    config: { scope: 'admin' },
    schema: {
      operationId: 'blockProviderModel',
      summary: 'Block a model',
      description: [
        'Leaves the model out of the catalogue and makes validate answer not valid, with the reason, until it is unblocked.',
        'Blocks are kept in STATE_DIR (`blocks.json`) and survive a restart; with REDIS_URL every replica sees them from the moment this answers.'
      ].join(' '),
      tags: ['providers'],
      params: NameParams,
      body: Type.Object({ model_id: Type.String({ minLength: 1, maxLength: 200 }), reason: Type.Optional(Type.String({ maxLength: 500 })) }),
      response: { 200: { description: 'Blocked', ...ModelBlock }, 404: notFound, 503: stateStoreUnavailable }
    }
  }, async (request) => {
    const { name } = request.params
    const modelId = requiredModelId(request.body.model_id)
    const { catalogue } = app.providers.get(name)
    return { model_id: modelId, ...await catalogue.block(modelId, request.body.reason?.trim() || 'blocked by an operator') }
  })

  app.delete('/providers/:name/models/block', {
    config: { scope: 'admin' },
    schema: {
      operationId: 'unblockProviderModel',
      summary: 'Unblock a model',
      description: 'Lifts a block; 404 when the model was not blocked.',
      tags: ['providers'],
      params: NameParams,
      querystring: Type.Object({ model_id: Type.String({ minLength: 1, maxLength: 200 }) }),
      response: { 200: { description: 'Unblocked', ...Type.Object({ model_id: Type.String(), unblocked: Type.Boolean() }) }, 404: errorRef('No such provider, or the model was not blocked'), 503: stateStoreUnavailable }
    }
  }, async (request) => {
    const { name } = request.params
    const { model_id: modelId } = request.query
    if (!await app.providers.get(name).catalogue.unblock(modelId)) throw new MdModelNotBlockedError(modelId)
    return { model_id: modelId, unblocked: true }
  })

  app.get('/providers/:name/diagnostics', {
    config: { scope: 'read' },
    schema: {
      operationId: 'getProviderDiagnostics',
      summary: 'Export a provider\'s state',
      description: [
        'Everything modeldepot knows about the provider, to attach to a bug report:',
        'health, the errors of the last five minutes with the action taken, catalogue cache status and blocks.',
        'Secrets are redacted (the token is masked).'
      ].join(' '),
      tags: ['providers'],
      params: NameParams,
      response: {
        200: {
          description: 'The diagnostics',
          ...Type.Object({
            exported_at: Type.String({ format: 'date-time' }),
            provider: RefTo(ProviderSummarySchema),
            recent_errors: Type.Array(RecordedErrorSchema),
            catalogue: Type.Object({ fetched_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]), models: Type.Union([Type.Integer(), Type.Null()]), hits: Type.Integer(), misses: Type.Integer(), ttl_s: Type.Number() }, { additionalProperties: false }),
            blocks: Type.Array(ModelBlock)
          })
        },
        404: notFound
      }
    }
  }, async (request) => {
    const { name } = request.params
    const { provider, catalogue } = app.providers.get(name)
    const summary = app.providers.summary(name)
    return {
      exported_at: new Date().toISOString(),
      provider: summary,
      recent_errors: provider.health.recentErrors(),
      catalogue: { fetched_at: catalogue.fetchedAt, models: catalogue.size, hits: catalogue.hits, misses: catalogue.misses, ttl_s: summary.catalogue.ttl_s },
      blocks: catalogue.blocks()
    }
  })
}

export default providerRoutes
