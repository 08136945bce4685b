import bearerAuth from '@fastify/bearer-auth'
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, preHandlerAsyncHookHandler, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import { apiKeyEntries, ApiKeys, bearerToken, type ApiKeyEntry, type ApiKeyIdentity } from '../src/auth/api-keys.js'
import { ApiKeysFileError, readApiKeysFile } from '../src/auth/api-keys-file.js'
import { grants, isScope, SCOPES, type Scope } from '../src/auth/scopes.js'
import type { Config } from '../src/config.js'
import { MdForbiddenError, MdUnauthorizedError } from '../src/errors.js'
import { errorRef } from './errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    apiKeys: ApiKeys
    /**
     * onRequest hook: rejects a request without a valid API key (401), or whose key lacks the
     * route's `config.scope` (403). A no-op when auth is disabled.
     */
    requireApiKey: onRequestHookHandler
    /** preHandler hook: the check of `config.scopeOfRequest`, once the parameters are validated. */
    requireRequestScope: preHandlerAsyncHookHandler
    /** Reads API_KEYS_FILE again (on SIGHUP); a file that cannot be used leaves the keys as they were. */
    reloadApiKeys: () => ApiKeysReload
  }
  interface FastifyRequest {
    /** The key the request came with, once requireApiKey accepted it (never the key itself). */
    apiKey: ApiKeyIdentity | null
  }
  interface FastifyContextConfig {
    /**
     * The scope a key needs for this route. Every route behind the key declares one (routes/api.ts
     * refuses to register one that does not); one that still has none needs admin.
     */
    scope?: Scope
    /** When the scope depends on the parameters (a plan only reads): what this request needs, checked once they are validated. */
    scopeOfRequest?: (request: FastifyRequest) => Scope
  }
}

export type ApiKeysReload = { reloaded: true, names: string[] } | { reloaded: false, reason: string }

export interface AuthOptions {
  config: Pick<Config, 'apiKeys' | 'authDisabled'> & Partial<Pick<Config, 'apiKeysFile'>>
}

/** The scope the route needs before its parameters are read; a route that declares none needs admin. */
function routeScope (request: FastifyRequest): Scope {
  const { scope, scopeOfRequest } = request.routeOptions.config
  // Every key can read: the rest is checked by requireRequestScope.
  if (scopeOfRequest !== undefined) return 'read'
  if (scope !== undefined) return scope
  return request.is404 ? 'read' : 'admin'
}

function checkScope (request: FastifyRequest, required: Scope): void {
  const key = request.apiKey
  if (key === null || grants(key.scope, required)) return
  request.log.warn({ key_name: key.name, key_scope: key.scope, required_scope: required }, 'request rejected: the key lacks the scope')
  throw new MdForbiddenError(key.name, key.scope, required)
}

// The access log ("request completed") then names the key; pino's child loggers can take bindings late.
function nameInLog (request: FastifyRequest, key: ApiKeyIdentity): void {
  const log = request.log as Partial<Logger>
  if (typeof log.setBindings === 'function') log.setBindings({ key_name: key.name })
}

async function authPlugin (app: FastifyInstance, { config }: AuthOptions): Promise<void> {
  const fromEnv = apiKeyEntries(config.apiKeys)
  const apiKeys = new ApiKeys([...fromEnv, ...config.apiKeysFile?.keys ?? []])
  app.decorate('apiKeys', apiKeys)
  app.decorateRequest('apiKey', null)
  app.decorate('reloadApiKeys', function reloadApiKeys (): ApiKeysReload {
    const outcome = reload(config, fromEnv)
    if (!outcome.reloaded) {
      app.log.error({ reason: outcome.reason }, 'API_KEYS_FILE not reloaded: the keys stay as they were')
      return outcome
    }
    // Before any log line could show them.
    if (app.hasDecorator('secrets')) for (const key of outcome.plainKeys) app.secrets.add(key)
    apiKeys.replace(outcome.entries)
    const names = apiKeys.names
    app.log.info({ keys: names }, 'API keys reloaded from API_KEYS_FILE')
    return { reloaded: true, names }
  })

  if (config.authDisabled) {
    app.log.warn('AUTH_DISABLED=true: every /api route is open to anyone who can reach this port; do not expose it beyond a trusted network')
    app.decorate('requireApiKey', function noAuth (_request: FastifyRequest, _reply: FastifyReply, done: () => void) { done() })
    app.decorate('requireRequestScope', async function noScopes () {})
    return
  }

  // We log rejections ourselves (at warn, without the key): the plugin's own logging only works
  // with loggers whose methods are own properties, which pino's are not.
  await app.register(bearerAuth, {
    keys: [],
    // The plugin trims what follows "Bearer "; we take only the exact form (see bearerToken).
    auth: (_key: string, request: FastifyRequest) => {
      request.apiKey = apiKeys.identify(bearerToken(request.headers.authorization) ?? '') ?? null
      return request.apiKey !== null
    },
    addHook: false
  })

  app.decorate('requireApiKey', function requireApiKey (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) {
    app.verifyBearerAuth!(request, reply, (err?: Error) => {
      if (err === undefined && request.apiKey !== null) {
        nameInLog(request, request.apiKey)
        try {
          checkScope(request, routeScope(request))
        } catch (forbidden) {
          return done(forbidden as Error)
        }
        return done()
      }
      const invalid = request.headers.authorization !== undefined
      request.log.warn({ reason: invalid ? 'invalid API key or malformed Authorization header' : 'no Authorization header' }, 'request rejected: unauthorized')
      reply.header('www-authenticate', invalid ? 'Bearer realm="modeldepot", error="invalid_token"' : 'Bearer realm="modeldepot"')
      done(new MdUnauthorizedError())
    })
  })

  app.decorate('requireRequestScope', async function requireRequestScope (request: FastifyRequest) {
    const { scopeOfRequest } = request.routeOptions.config
    if (scopeOfRequest !== undefined) checkScope(request, scopeOfRequest(request))
  })
}

type Reloaded = { reloaded: true, entries: ApiKeyEntry[], plainKeys: string[] } | { reloaded: false, reason: string }

function reload (config: AuthOptions['config'], fromEnv: ApiKeyEntry[]): Reloaded {
  if (config.apiKeysFile === undefined) return { reloaded: false, reason: 'API_KEYS_FILE is not set' }
  try {
    const file = readApiKeysFile(config.apiKeysFile.path, fromEnv)
    // An empty file without API_KEY would lock every client out until a restart.
    if (fromEnv.length + file.entries.length === 0 && !config.authDisabled) return { reloaded: false, reason: `API_KEYS_FILE ${config.apiKeysFile.path} holds no key and API_KEY is not set` }
    return { reloaded: true, entries: [...fromEnv, ...file.entries], plainKeys: file.plainKeys }
  } catch (err) {
    if (err instanceof ApiKeysFileError) return { reloaded: false, reason: err.message }
    throw err
  }
}

interface RouteDocs { description?: string, security?: unknown, response?: Record<string, { description?: string }>, 'x-required-scope'?: Scope }

/**
 * onRoute hook of every scope behind the key: a route that declares no `config.scope` is refused
 * when it is registered, so none can be added unscoped. The OpenAPI document shows the scope as the
 * operation's `x-required-scope`, its bearer security scope, a line of its description, and a 403.
 */
export function declaredScope (route: RouteOptions): void {
  const scope = route.config?.scope
  if (!isScope(scope)) {
    throw new Error(`${String(route.method)} ${route.url} declares no scope: set its config.scope to ${SCOPES.join(', ')} (plugins/auth.ts)`)
  }
  if (route.schema === undefined) return
  const schema = route.schema as RouteDocs
  schema.security = [{ bearerAuth: [scope] }]
  // A GET's HEAD route shares its schema: described once.
  if (schema['x-required-scope'] !== undefined) return
  schema['x-required-scope'] = scope
  schema.description = [schema.description, `Needs an API key with the \`${scope}\` scope.`].filter((line) => line !== undefined).join('\n\n')
  if (scope === 'read' && route.config?.scopeOfRequest === undefined) return
  const forbidden = 'MD_FORBIDDEN: the API key lacks the scope this needs (details.required_scope)'
  const own = schema.response?.['403']
  schema.response = { ...schema.response, 403: own === undefined ? errorRef(forbidden) : { ...own, description: `${own.description ?? ''}; or ${forbidden}` } }
}

export default fp(authPlugin, { name: 'auth' })
