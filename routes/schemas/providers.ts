import { Type } from 'typebox'
import { Nullable } from './nullable.js'

export const ProviderStatus = Type.Union(['online', 'degraded', 'rate_limited', 'blacklisted', 'down', 'unconfigured'].map((status) => Type.Literal(status)), {
  description: 'online; degraded (recent failures); rate_limited (backing off after a 429); blacklisted (after repeated 429s); down (after repeated failures, one probe after the cooldown); unconfigured (no token)'
})

export const HealthSnapshot = Type.Object({
  status: ProviderStatus,
  latency_avg_ms: Nullable(Type.Number()),
  latency_p95_ms: Nullable(Type.Number()),
  success_rate: Nullable(Type.Number({ minimum: 0, maximum: 1 }), 'Over the recent calls; null before any'),
  requests: Type.Integer(),
  failures: Type.Integer(),
  consecutive_failures: Type.Integer(),
  consecutive_429s: Type.Integer(),
  cooldown_until: Nullable(Type.String({ format: 'date-time' })),
  last_error: Nullable(Type.Object({ at: Type.String({ format: 'date-time' }), status: Nullable(Type.Integer()), code: Type.String(), message: Type.String() }, { additionalProperties: false })),
  last_checked_at: Nullable(Type.String({ format: 'date-time' }))
}, { additionalProperties: false })

export const ProviderSummary = Type.Object({
  name: Type.String(),
  kind: Type.Union([Type.Literal('huggingface'), Type.Literal('openrouter'), Type.Literal('openai')]),
  base_url: Type.String(),
  priority: Type.Integer({ description: 'Higher first' }),
  token_env: Nullable(Type.String(), 'The setting that holds the token'),
  token: Nullable(Type.String(), 'The token, masked (hf_****abcd); null when none is set'),
  limiter: Type.Object({ max_concurrent: Type.Integer(), min_time_ms: Type.Integer(), queued: Type.Integer(), running: Type.Integer() }, { additionalProperties: false }),
  health: HealthSnapshot,
  catalogue: Type.Object({ fetched_at: Nullable(Type.String({ format: 'date-time' })), models: Nullable(Type.Integer()), blocked: Type.Integer(), ttl_s: Type.Number() }, { additionalProperties: false })
}, { $id: 'ProviderSummary', title: 'ProviderSummary', additionalProperties: false })

export const CheckResult = Type.Object({
  name: Type.Union([Type.Literal('token'), Type.Literal('catalogue')]),
  ok: Type.Boolean(),
  status: Nullable(Type.Integer(), 'The upstream HTTP status; null when it could not be reached'),
  latency_ms: Type.Number(),
  message: Type.String(),
  fix_steps: Type.Array(Type.String(), { description: 'What to do, in plain words, when the check failed' }),
  curl: Type.String({ description: 'The same check as a curl command; the token is an environment variable, never its value' })
}, { additionalProperties: false })

export const ProviderCheck = Type.Object({
  provider: Type.String(),
  ok: Type.Boolean(),
  account: Nullable(Type.Object({ name: Type.String(), role: Nullable(Type.String()) }, { additionalProperties: false }), 'For the Hub: who the token belongs to and its role'),
  checks: Type.Array(CheckResult)
}, { $id: 'ProviderCheck', title: 'ProviderCheck', additionalProperties: false })

export const CatalogueModel = Type.Object({
  id: Type.String(),
  name: Nullable(Type.String()),
  context_length: Nullable(Type.Integer()),
  blocked: Type.Boolean(),
  block_reason: Nullable(Type.String())
}, { additionalProperties: false })

export const ModelBlock = Type.Object({ model_id: Type.String(), reason: Type.String(), at: Type.String({ format: 'date-time' }) }, { additionalProperties: false })

export const RecordedError = Type.Object({
  at: Type.String({ format: 'date-time' }),
  provider: Type.String(),
  status: Nullable(Type.Integer()),
  code: Type.String(),
  message: Type.String(),
  action: Type.Union(['recorded', 'backed_off', 'blacklisted', 'marked_down'].map((action) => Type.Literal(action)), { description: 'What the failure made modeldepot do' })
}, { additionalProperties: false })
