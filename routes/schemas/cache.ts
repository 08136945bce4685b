import { Type } from '../../src/type-builder.js'
import type { Static } from 'typebox'
import type { CacheState, PinState, PruneResult } from '../../src/cache/cache-control.js'
import { LiteralUnion, Nullable, type Expect, type SameShape } from '../../src/json-schema.js'

export const PinParams = Type.Object({
  model_id: Type.Optional(Type.String({ description: 'Required. `org/name`', examples: ['Qwen/Qwen2.5-0.5B-Instruct'] }))
}, { $id: 'PinParams', title: 'PinParams', description: 'model_id may come in the query string or a JSON body (the body wins)' })

export const PinResult = Type.Object({
  model_id: Type.String(),
  pinned: Type.Boolean(),
  pinned_at: Nullable(Type.String({ format: 'date-time' }))
}, { title: 'PinResult', additionalProperties: false })

const ModelUsage = Type.Object({
  model_id: Type.String(),
  size_bytes: Type.Integer({ description: 'Every file of the model\'s folder (blobs, partials, links, refs): what evicting it frees' }),
  last_used_at: Nullable(Type.String({ format: 'date-time', description: 'The later of its blobs\' newest atime and the last time modeldepot downloaded it, found it complete or made it the default' })),
  protected: Nullable(LiteralUnion(['default_model', 'pinned', 'active_job'] as const), 'Why it is never evicted: the default model, pinned, or a job of it has not ended')
}, { additionalProperties: false })

export const CacheStateSchema = Type.Object({
  cache_dir: Type.String(),
  size_bytes: Type.Integer({ description: 'Every file under the hub cache: all models (other tools\' too), partials, locks' }),
  max_bytes: Nullable(Type.Integer({ description: 'CACHE_MAX_BYTES; null when unset' })),
  high_watermark_percent: Nullable(Type.Integer({ description: 'CACHE_HIGH_WATERMARK; null when unset' })),
  low_watermark_percent: Nullable(Type.Integer({ description: 'CACHE_LOW_WATERMARK; null when unset' })),
  disk_total_bytes: Type.Integer(),
  disk_free_bytes: Type.Integer(),
  disk_used_percent: Type.Number(),
  eviction_order: Type.Array(ModelUsage, { description: 'Every cached model, in the order the quota evicts them: least recently used first, then the protected ones' })
}, { title: 'CacheState', additionalProperties: false })

export const PruneParams = Type.Object({
  dry_run: Type.Optional(Type.Boolean({ description: 'false removes; by default nothing is removed and the answer lists what would be' })),
  detached: Type.Optional(Type.Boolean({ description: 'Also snapshots no ref points to, with the blobs only they use' }))
}, { $id: 'PruneParams', title: 'PruneParams' })

const PruneItem = Type.Object({
  path: Type.String({ description: 'Relative to the hub cache' }),
  kind: LiteralUnion(['unreferenced_blob', 'partial', 'temporary', 'lock', 'detached_snapshot', 'detached_blob', 'stale_record'] as const, { description: 'stale_record: huggingface_hub\'s `.no_exist/{commit}/` or `trees/{commit}.json` of a commit no ref or snapshot has (or of a detached snapshot pruned with it)' }),
  bytes: Type.Integer()
}, { additionalProperties: false })

export const PruneResultSchema = Type.Object({
  dry_run: Type.Boolean(),
  items: Type.Array(PruneItem, { description: 'What would go (dry run) or went' }),
  total_bytes: Type.Integer(),
  freed_bytes: Type.Integer({ description: 'What the real run freed; 0 in a dry run' })
}, { title: 'PruneResult', additionalProperties: false })

// The domain declares these as interfaces; tsc checks the schemas still describe them.
export type CacheStateAgrees = Expect<SameShape<Static<typeof CacheStateSchema>, CacheState>>
export type PinAgrees = Expect<SameShape<Static<typeof PinResult>, PinState>>
export type PruneAgrees = Expect<SameShape<Static<typeof PruneResultSchema>, PruneResult>>
