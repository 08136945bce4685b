import { Type } from '../type-builder.js'
import type { Static } from 'typebox'
import { Nullable } from '../json-schema.js'
import { ProviderKindSchema } from './provider-definitions.js'
import { HealthSnapshotSchema } from './provider-health.js'
import { RateLimitsSchema } from './hub-rate-limit.js'

/** One provider as the API shows it (the registry builds it): declared once, the type derived. */
export const ProviderSummarySchema = Type.Object({
  name: Type.String(),
  kind: ProviderKindSchema,
  base_url: Type.String(),
  priority: Type.Integer({ description: 'Higher first' }),
  token_env: Nullable(Type.String(), 'The setting that holds the token'),
  token: Nullable(Type.String(), 'The token, masked (hf_****abcd); null when none is set'),
  limiter: Type.Object({
    max_concurrent: Type.Integer(),
    min_time_ms: Type.Integer(),
    queued: Type.Integer(),
    running: Type.Integer()
  }, { additionalProperties: false }),
  health: HealthSnapshotSchema,
  rate_limit: Nullable(RateLimitsSchema, 'The Hub\'s quota per bucket ({api, resolvers, pages}: remaining, limit, resets_at) from its RateLimit headers; null for other providers'),
  catalogue: Type.Object({
    fetched_at: Nullable(Type.String({ format: 'date-time' })),
    models: Nullable(Type.Integer()),
    blocked: Type.Integer(),
    ttl_s: Type.Number()
  }, { additionalProperties: false })
}, { $id: 'ProviderSummary', title: 'ProviderSummary', additionalProperties: false })
export type ProviderSummary = Static<typeof ProviderSummarySchema>
