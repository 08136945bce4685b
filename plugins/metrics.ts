import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { diskSpace } from '../src/cache/disk-space.js'
import { PROVIDER_STATUSES } from '../src/providers/provider-health.js'
import { CachedScan } from '../src/status/cache-summary.js'
import { RequestStats } from '../src/status/request-stats.js'

declare module 'fastify' {
  interface FastifyInstance {
    requestStats: RequestStats
    cachedScan: CachedScan
    eventLoopDelay: IntervalHistogram
    metrics: Registry
  }
}

/** Response times for /api/system-status, and the Prometheus registry behind /metrics (one per app). */
async function metricsPlugin (app: FastifyInstance): Promise<void> {
  const requestStats = new RequestStats()
  const cachedScan = new CachedScan(app.config.hubCacheDir)
  const eventLoopDelay = monitorEventLoopDelay({ resolution: 20 })
  eventLoopDelay.enable()
  const registry = new Registry()
  app.decorate('requestStats', requestStats)
  app.decorate('cachedScan', cachedScan)
  app.decorate('eventLoopDelay', eventLoopDelay)
  app.decorate('metrics', registry)
  app.downloads.onJobEnded(() => cachedScan.invalidate())

  const duration = new Histogram({
    name: 'modeldepot_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry]
  })
  // A plain callback, not an async function: it runs for every request (issue 18).
  app.addHook('onResponse', (request, reply, done) => {
    // The route pattern, not the URL, so ids and query strings do not make new series.
    const route = request.routeOptions.url ?? 'unknown'
    requestStats.record(`${request.method} ${route}`, reply.elapsedTime)
    duration.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000)
    done()
  })

  // The metrics below are read by their collect() at each scrape. Each is registered with this app's
  // registry (`registers: []` keeps it out of prom-client's global one, which every app would share).
  let countedBytes = 0
  registry.registerMetric(new Counter({
    name: 'modeldepot_download_bytes_total',
    help: 'Bytes downloads brought over the network',
    registers: [],
    collect () {
      const total = app.downloads.bytesTransferred
      this.inc(total - countedBytes)
      countedBytes = total
    }
  }))
  registry.registerMetric(new Gauge({
    name: 'modeldepot_download_jobs',
    help: 'Download jobs by state',
    labelNames: ['state'],
    registers: [],
    async collect () {
      const counts = await app.downloads.counts()
      this.set({ state: 'active' }, counts.active)
      this.set({ state: 'queued' }, counts.queued)
    }
  }))
  registry.registerMetric(new Gauge({
    name: 'modeldepot_provider_status',
    help: 'Provider health: 1 for the current status',
    labelNames: ['provider', 'status'],
    registers: [],
    collect () {
      for (const provider of app.providers.list()) {
        for (const status of PROVIDER_STATUSES) this.set({ provider: provider.name, status }, provider.health.status === status ? 1 : 0)
      }
    }
  }))
  registry.registerMetric(new Gauge({
    name: 'modeldepot_provider_latency_seconds',
    help: 'Average provider call latency over the recent window',
    labelNames: ['provider'],
    registers: [],
    collect () {
      for (const provider of app.providers.list()) {
        if (provider.health.latency_avg_ms !== null) this.set({ provider: provider.name }, provider.health.latency_avg_ms / 1000)
      }
    }
  }))
  let counted429s: Record<string, number> = {}
  registry.registerMetric(new Counter({
    name: 'modeldepot_provider_rate_limited_total',
    help: '429 answers received from each provider',
    labelNames: ['provider'],
    registers: [],
    collect () {
      for (const summary of app.providers.list()) {
        const total = app.providers.get(summary.name).provider.rateLimited
        this.inc({ provider: summary.name }, total - (counted429s[summary.name] ?? 0))
        counted429s = { ...counted429s, [summary.name]: total }
      }
    }
  }))
  registry.registerMetric(new Gauge({
    name: 'modeldepot_hub_ratelimit_remaining',
    help: 'Requests left in the Hub\'s current rate-limit window, per bucket (api, resolvers, pages), from its RateLimit header',
    labelNames: ['bucket'],
    registers: [],
    collect () {
      this.reset()
      const hub = app.providers.list().find((summary) => summary.kind === 'huggingface')
      for (const [bucket, quota] of Object.entries(hub?.rate_limit ?? {})) this.set({ bucket }, quota.remaining)
    }
  }))
  registry.registerMetric(new Gauge({
    name: 'modeldepot_cache_size_bytes',
    help: 'Bytes the model cache holds',
    registers: [],
    async collect () { this.set((await cachedScan.get()).total_bytes) }
  }))
  registry.registerMetric(new Gauge({
    name: 'modeldepot_disk_free_bytes',
    help: 'Free bytes on the cache volume',
    registers: [],
    async collect () { this.set((await diskSpace(app.config.hubCacheDir)).free_bytes) }
  }))
  registry.registerMetric(new Gauge({
    name: 'modeldepot_event_streams_open',
    help: 'Server-Sent Event streams open now',
    registers: [],
    collect () { this.set(app.eventStreams.open) }
  }))

  app.addHook('onClose', async () => eventLoopDelay.disable())
}

export default fp(metricsPlugin, { name: 'metrics', dependencies: ['downloads', 'provider-backoff', 'event-streams'] })
