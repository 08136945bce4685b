import { Type } from '../type-builder.js'
import type { Static } from 'typebox'
import { Nullable } from '../json-schema.js'
import { percentile } from '../providers/provider-health.js'

interface RouteSamples { count: number, totalMs: number, recent: number[] }

/** The fields of a timing summary, for the system-status schema to spread where it shows one. */
export const TimingFields = { requests: Type.Integer(), avg_ms: Nullable(Type.Number()), p95_ms: Nullable(Type.Number()) }
export const TimingSummarySchema = Type.Object(TimingFields)
export type TimingSummary = Static<typeof TimingSummarySchema>

// Each route keeps its last samples: enough for a p95, bounded whatever the traffic.
const SAMPLES_PER_ROUTE = 500

/** Response times by route (the route pattern, not the URL, so ids do not make new routes). */
export class RequestStats {
  readonly #routes = new Map<string, RouteSamples>()

  record (route: string, durationMs: number): void {
    const samples = this.#routes.get(route) ?? { count: 0, totalMs: 0, recent: [] }
    samples.count++
    samples.totalMs += durationMs
    samples.recent.push(durationMs)
    if (samples.recent.length > SAMPLES_PER_ROUTE) samples.recent.shift()
    this.#routes.set(route, samples)
  }

  overall (): TimingSummary {
    const all = [...this.#routes.values()]
    const count = all.reduce((sum, samples) => sum + samples.count, 0)
    return summarize(count, all.reduce((sum, samples) => sum + samples.totalMs, 0), all.flatMap((samples) => samples.recent))
  }

  /** The busiest routes first. */
  busiest (limit = 10): Array<TimingSummary & { route: string }> {
    return [...this.#routes].sort((a, b) => b[1].count - a[1].count).slice(0, limit)
      .map(([route, samples]) => ({ route, ...summarize(samples.count, samples.totalMs, samples.recent) }))
  }
}

function summarize (count: number, totalMs: number, recent: number[]): TimingSummary {
  const round = (value: number): number => Math.round(value * 10) / 10
  return { requests: count, avg_ms: count === 0 ? null : round(totalMs / count), p95_ms: recent.length === 0 ? null : round(percentile(recent, 95)) }
}
