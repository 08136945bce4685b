import { Type } from 'typebox'
import { Nullable } from '../../src/json-schema.js'

// ProviderSummary, its health and the recorded errors are declared by the domain (src/providers/);
// what only the API shows is declared here.

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
