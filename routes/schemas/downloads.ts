import { Type } from '../../src/type-builder.js'
import type { Static } from 'typebox'
import { DownloadJobSchema } from '../../src/downloads/download-job.js'

// String first: with Fastify's array coercion, a single query value would otherwise become a
// one-element list and its commas would no longer separate patterns.
const PatternList = Type.Union([
  Type.String(),
  Type.Array(Type.String(), { maxItems: 100 })
], { description: 'Glob patterns (fnmatch rules, as huggingface_hub: `*` also matches `/`; a pattern ending in `/` means the folder), as a list or comma-separated' })

/** The parameters of a download; each may come in the query string or in a JSON body. */
export const DownloadParams = Type.Object({
  model_id: Type.Optional(Type.String({ description: 'Required. `name` or `org/name`, as on the Hub', examples: ['Qwen/Qwen2.5-0.5B-Instruct'] })),
  revision: Type.Optional(Type.String({ description: 'Branch, tag or 40-hex commit; default `main`' })),
  allow_patterns: Type.Optional(PatternList),
  ignore_patterns: Type.Optional(PatternList),
  set_default: Type.Optional(Type.Boolean({ description: 'Make it the default model once complete' })),
  auto: Type.Optional(Type.Boolean({ description: 'false: download nothing and answer the plan; default true' })),
  max_bytes_per_s: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
    description: 'This job\'s cap on download bytes per second, at least 65536; 0 or null for none. DOWNLOAD_MAX_BYTES_PER_S (GET /api/limits) applies as well: the job gets the smaller'
  })),
  wait_for_provider: Type.Optional(Type.Boolean({
    description: 'While the Hub cools down (a 429, or down): true (default) queues the job with `waiting` until the cooldown ends (202); false answers 503 MD_PROVIDER_UNAVAILABLE at once'
  })),
  callback_url: Type.Optional(Type.String({
    maxLength: 2048,
    description: 'POSTed the job when it ends (e.g. an n8n Wait node\'s `{{ $execution.resumeUrl }}`). http(s) only, no credentials, and its host must be listed in CALLBACK_ALLOWED_HOSTS',
    examples: ['http://n8n:5678/webhook-waiting/123']
  }))
}, { $id: 'DownloadParams', title: 'DownloadParams', description: 'Parameters may come in the query string, a JSON body, or both (the body wins)' })
export type DownloadInput = Static<typeof DownloadParams>

export const VerifyParams = Type.Object({
  model_id: Type.Optional(Type.String({ description: 'Required. The cached model, `org/name`', examples: ['Qwen/Qwen2.5-0.5B-Instruct'] })),
  revision: Type.Optional(Type.String({ description: 'A branch, tag or commit the cache has; default main' })),
  repair: Type.Optional(Type.Boolean({ description: 'true: fetch the mismatched and missing files again from the Hub once they are found (only those); default false, which asks nothing of the Hub' })),
  callback_url: Type.Optional(Type.String({
    maxLength: 2048,
    description: 'POSTed the job when it ends, as for a download. http(s) only, no credentials, and its host must be listed in CALLBACK_ALLOWED_HOSTS'
  }))
}, { $id: 'VerifyParams', title: 'VerifyParams', description: 'Parameters may come in the query string, a JSON body, or both (the body wins)' })
export type VerifyInput = Static<typeof VerifyParams>

export const DownloadPlan = Type.Object({
  model_id: Type.String(),
  revision: Type.String(),
  commit: Type.String(),
  files: Type.Array(Type.Object({ path: Type.String(), size: Type.Integer(), cached: Type.Boolean() }, { additionalProperties: false })),
  file_count: Type.Integer(),
  bytes_total: Type.Integer(),
  bytes_cached: Type.Integer({ description: 'Verified files already in the cache plus resumable partial bytes' }),
  bytes_missing: Type.Integer(),
  free_bytes: Type.Integer({ description: 'Free space on the cache volume' }),
  curl: Type.String({ description: 'The same download as a call to this API' }),
  hf_cli: Type.String({ description: 'The same download with huggingface_hub\'s `hf download`' })
}, { $id: 'DownloadPlan', title: 'DownloadPlan', additionalProperties: false })

export const JobCounts = {
  active_downloads: Type.Integer({ description: 'Jobs transferring now' }),
  queued_downloads: Type.Integer({ description: 'Jobs waiting for a slot (MAX_CONCURRENT_DOWNLOADS)' })
}

export const DownloadProgress = Type.Object({
  ...DownloadJobSchema.properties,
  ...JobCounts
}, { $id: 'DownloadProgress', title: 'DownloadProgress', additionalProperties: false, description: 'A job, plus how many jobs are active and queued' })

export const DownloadList = Type.Object({
  jobs: Type.Array(Type.Ref('DownloadJob'), { description: 'Newest first' }),
  ...JobCounts
}, { title: 'DownloadList', additionalProperties: false })
