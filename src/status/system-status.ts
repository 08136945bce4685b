import { cpus, freemem, loadavg } from 'node:os'
import type { IntervalHistogram } from 'node:perf_hooks'
import { Type } from '../type-builder.js'
import type { Static } from 'typebox'
import { checkCacheDirWritable } from '../cache/cache-dir.js'
import type { DefaultModelStore } from '../cache/default-model-store.js'
import { diskSpace } from '../cache/disk-space.js'
import type { DownloadManager } from '../downloads/download-manager.js'
import { Nullable, RefTo } from '../json-schema.js'
import type { ProviderStatus, RecordedError } from '../providers/provider-health.js'
import type { ProviderRegistry } from '../providers/provider-registry.js'
import { ProviderSummarySchema, type ProviderSummary } from '../providers/provider-summary.js'
import { uptimeSeconds, VERSION } from '../service-info.js'
import type { CachedScan } from './cache-summary.js'
import { TimingFields, type RequestStats } from './request-stats.js'

const OverallHealth = Type.Union([Type.Literal('healthy'), Type.Literal('degraded'), Type.Literal('unhealthy')])

const ErrorWindow = Type.Object({
  window_s: Type.Integer(),
  total: Type.Integer(),
  by_provider: Type.Record(Type.String(), Type.Object({
    count: Type.Integer(),
    by_status: Type.Record(Type.String(), Type.Integer())
  }, { additionalProperties: false })),
  recent: Type.Array(Type.Object({
    at: Type.String({ format: 'date-time' }),
    provider: Type.String(),
    status: Nullable(Type.Integer()),
    code: Type.String(),
    message: Type.String(),
    action: Type.String({ description: 'recorded, backed_off, blacklisted or marked_down' })
  }, { additionalProperties: false }), { description: 'The 20 newest' })
}, { additionalProperties: false })

const Performance = Type.Object({
  ...TimingFields,
  busiest_routes: Type.Array(Type.Object({ route: Type.String(), ...TimingFields }, { additionalProperties: false })),
  fastest_provider: Nullable(Type.String()),
  catalogue_cache_hit_rate: Nullable(Type.Number({ minimum: 0, maximum: 1 }))
}, { additionalProperties: false })

const RecentEventSchema = Type.Object({
  at: Type.String({ format: 'date-time' }),
  kind: Type.String({ description: 'cache_eviction' }),
  model_id: Type.String(),
  message: Type.String()
}, { additionalProperties: false })
export type RecentEvent = Static<typeof RecentEventSchema>

/** The answer of GET /api/system-status, declared once: the route serves this schema, the code builds its type. */
export const SystemStatusSchema = Type.Object({
  overall_health: OverallHealth,
  reasons: Type.Array(Type.String(), { description: 'What made it degraded or unhealthy' }),
  version: Type.String(),
  uptime_s: Type.Number(),
  timestamp: Type.String({ format: 'date-time' }),
  providers: Type.Array(RefTo(ProviderSummarySchema), { description: 'Best first' }),
  models: Type.Object({
    local_count: Type.Integer(),
    total_bytes: Type.Integer(),
    default_model: Nullable(Type.String()),
    active_downloads: Type.Integer(),
    queued_downloads: Type.Integer()
  }, { additionalProperties: false }),
  infrastructure: Type.Object({
    cache_dir: Type.String(),
    disk: Type.Object({ total_bytes: Type.Integer(), free_bytes: Type.Integer(), used_percent: Type.Number() }, { additionalProperties: false }),
    memory: Type.Object({ rss_bytes: Type.Integer(), heap_used_bytes: Type.Integer(), system_free_bytes: Type.Integer() }, { additionalProperties: false }),
    cpu: Type.Object({ cores: Type.Integer(), load_avg: Type.Array(Type.Number()) }, { additionalProperties: false }),
    event_loop_delay_p99_ms: Type.Number(),
    node_version: Type.String(),
    pid: Type.Integer(),
    state_store: Type.Object({
      kind: Type.Union([Type.Literal('memory'), Type.Literal('redis')], { description: 'redis with REDIS_URL: the state replicas share' }),
      available: Type.Boolean(),
      error: Nullable(Type.Object({ code: Type.String(), message: Type.String() }, { additionalProperties: false }), 'Why it is not available')
    }, { additionalProperties: false, description: 'Where jobs and shared state are kept' })
  }, { additionalProperties: false }),
  errors: ErrorWindow,
  performance: Performance,
  recent_events: Type.Array(RecentEventSchema, { description: 'What this replica did on its own lately (a model the cache quota evicted), newest first, at most 20' })
}, { title: 'SystemStatus', additionalProperties: false })
export type SystemStatus = Static<typeof SystemStatusSchema>

export interface StatusSources {
  cacheDir: string
  startedAt: number
  providers: ProviderRegistry
  downloads: DownloadManager
  defaultModel: DefaultModelStore
  cachedScan: CachedScan
  requests: RequestStats
  eventLoopDelay: IntervalHistogram
  /** Where the jobs are kept; `connection` is the Redis client's status (`ready` when it answers), without Redis undefined. */
  stateStore: { connection: string | undefined }
  /** What this replica did on its own lately, newest first. */
  recentEvents?: () => RecentEvent[]
  now?: () => number
}

const ERROR_WINDOW_S = 300
const UNAVAILABLE: ReadonlySet<ProviderStatus> = new Set(['down', 'blacklisted', 'rate_limited'])
const DISK_FULL_PERCENT = 90

/** One answer to "how is this node": health with reasons, providers, models, machine, errors, speed. */
export async function systemStatus (sources: StatusSources): Promise<SystemStatus> {
  const now = sources.now?.() ?? Date.now()
  const providers = sources.providers.list()
  const [scan, disk, writable, defaultModel] = await Promise.all([
    sources.cachedScan.get(),
    diskSpace(sources.cacheDir),
    checkCacheDirWritable(sources.cacheDir),
    sources.defaultModel.get()
  ])
  const usedPercent = disk.total_bytes === 0 ? 0 : Math.round(((disk.total_bytes - disk.free_bytes) / disk.total_bytes) * 1000) / 10
  const counts = await sources.downloads.counts()
  const errors = providers.flatMap((summary) => sources.providers.get(summary.name).provider.health.recentErrors())
    .sort((a, b) => b.at.localeCompare(a.at))
  const eventLoopP99 = Math.round(sources.eventLoopDelay.percentile(99) / 1e4) / 100

  const stateStore = stateStoreOf(sources.stateStore.connection)
  const verdict = overallHealth(providers, writable, usedPercent)
  if (stateStore.error !== null) {
    verdict.reasons.unshift(`${stateStore.error.code}: ${stateStore.error.message}`)
    if (verdict.overall_health === 'healthy') verdict.overall_health = 'degraded'
  }
  return {
    ...verdict,
    version: VERSION,
    uptime_s: uptimeSeconds(sources.startedAt, now),
    timestamp: new Date(now).toISOString(),
    providers,
    models: {
      local_count: scan.models.length,
      total_bytes: scan.total_bytes,
      default_model: defaultModel.model_id,
      active_downloads: counts.active,
      queued_downloads: counts.queued
    },
    infrastructure: {
      cache_dir: sources.cacheDir,
      disk: { ...disk, used_percent: usedPercent },
      memory: { rss_bytes: process.memoryUsage.rss(), heap_used_bytes: process.memoryUsage().heapUsed, system_free_bytes: freemem() },
      cpu: { cores: cpus().length, load_avg: loadavg().map((load) => Math.round(load * 100) / 100) },
      event_loop_delay_p99_ms: eventLoopP99,
      node_version: process.version,
      pid: process.pid,
      state_store: stateStore
    },
    errors: errorWindow(errors),
    performance: performance(sources, providers),
    recent_events: sources.recentEvents?.() ?? []
  }
}

type HealthVerdict = Pick<SystemStatus, 'overall_health' | 'reasons'>

// Degraded, not unhealthy: the replica still runs its own transfers, and answers for them.
function stateStoreOf (connection: string | undefined): SystemStatus['infrastructure']['state_store'] {
  if (connection === undefined) return { kind: 'memory', available: true, error: null }
  if (connection === 'ready') return { kind: 'redis', available: true, error: null }
  return {
    kind: 'redis',
    available: false,
    error: {
      code: 'MD_STATE_STORE_UNAVAILABLE',
      message: `Redis (REDIS_URL) is not connected (${connection}): new downloads, cancels and settings changes answer 503 until it is; running transfers go on`
    }
  }
}

function overallHealth (providers: ProviderSummary[], writable: { ok: boolean, reason?: string }, usedPercent: number): HealthVerdict {
  const unhealthy: string[] = []
  const degraded: string[] = []
  if (!writable.ok) unhealthy.push(writable.reason ?? 'the model cache directory cannot be written')
  const configured = providers.filter((provider) => provider.health.status !== 'unconfigured')
  for (const provider of configured) {
    const { status, last_error: lastError, cooldown_until: until } = provider.health
    if (status === 'online') continue
    const why = lastError === null ? '' : ` after ${lastError.code}: ${lastError.message}`
    degraded.push(`provider ${provider.name} is ${status}${until === null ? '' : ` until ${until}`}${why}`)
  }
  if (configured.length > 0 && configured.every((provider) => UNAVAILABLE.has(provider.health.status))) unhealthy.push('no configured provider is taking calls')
  if (usedPercent >= DISK_FULL_PERCENT) degraded.push(`the cache volume is ${usedPercent}% full`)
  if (unhealthy.length > 0) return { overall_health: 'unhealthy', reasons: [...unhealthy, ...degraded] }
  return { overall_health: degraded.length > 0 ? 'degraded' : 'healthy', reasons: degraded }
}

function errorWindow (errors: RecordedError[]): Static<typeof ErrorWindow> {
  const byProvider: Static<typeof ErrorWindow>['by_provider'] = {}
  for (const error of errors) {
    const entry = byProvider[error.provider] ??= { count: 0, by_status: {} }
    entry.count++
    const status = error.status === null ? error.code : String(error.status)
    entry.by_status[status] = (entry.by_status[status] ?? 0) + 1
  }
  return {
    window_s: ERROR_WINDOW_S,
    total: errors.length,
    by_provider: byProvider,
    recent: errors.slice(0, 20).map((error) => ({
      at: error.at,
      provider: error.provider,
      status: error.status,
      code: error.code,
      message: error.message,
      action: error.action
    }))
  }
}

function performance (sources: StatusSources, providers: ProviderSummary[]): Static<typeof Performance> {
  const fastest = providers
    .filter((provider) => provider.health.latency_avg_ms !== null && (provider.health.status === 'online' || provider.health.status === 'degraded'))
    .sort((a, b) => a.health.latency_avg_ms! - b.health.latency_avg_ms!)[0]
  let hits = 0
  let lookups = 0
  for (const summary of providers) {
    const { catalogue } = sources.providers.get(summary.name)
    hits += catalogue.hits
    lookups += catalogue.hits + catalogue.misses
  }
  return {
    ...sources.requests.overall(),
    busiest_routes: sources.requests.busiest(10),
    fastest_provider: fastest?.name ?? null,
    catalogue_cache_hit_rate: lookups === 0 ? null : Math.round((hits / lookups) * 1000) / 1000
  }
}
