import { Type } from '../../src/type-builder.js'
import type { Static } from 'typebox'
import { Nullable, type Expect, type SameShape } from '../../src/json-schema.js'
import type { ModelBlock as StoredBlock } from '../../src/providers/block-store.js'
import type { CatalogueModel as ListedModel } from '../../src/providers/model-catalogue.js'
import type { ProviderCheck as CheckReport } from '../../src/providers/provider-check.js'

// ProviderSummary, its health and the recorded errors are declared by the domain (src/providers/).
// The shapes below are the domain's interfaces as the API shows them; tsc checks they still agree.

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

export type ProviderCheckAgrees = Expect<SameShape<Static<typeof ProviderCheck>, CheckReport>>
export type CatalogueModelAgrees = Expect<SameShape<Static<typeof CatalogueModel>, ListedModel & { blocked: boolean, block_reason: string | null }>>
export type ModelBlockAgrees = Expect<SameShape<Static<typeof ModelBlock>, StoredBlock & { model_id: string }>>
