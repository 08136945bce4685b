import { Type } from 'typebox'
import { Nullable } from './nullable.js'

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
  callback_url: Type.Optional(Type.String({
    maxLength: 2048,
    description: 'POSTed the job when it ends (e.g. an n8n Wait node\'s `{{ $execution.resumeUrl }}`). http(s) only, no credentials, and its host must be listed in CALLBACK_ALLOWED_HOSTS',
    examples: ['http://n8n:5678/webhook-waiting/123']
  }))
}, { $id: 'DownloadParams', title: 'DownloadParams', description: 'Parameters may come in the query string, a JSON body, or both (the body wins)' })

export const JobErrorSchema = Type.Object({
  code: Type.String(),
  message: Type.String(),
  hint: Type.Optional(Type.String())
}, { additionalProperties: false })

export const CallbackState = Type.Object({
  url: Type.String({ description: 'The callback URL with every query value masked (resume URLs carry tokens)' }),
  attempts: Type.Integer({ minimum: 0, description: 'POSTs made so far; 0 until the job ends' }),
  last_status: Nullable(Type.Integer(), 'The HTTP status of the last attempt'),
  delivered_at: Nullable(Type.String({ format: 'date-time' }), 'When the receiver accepted it (2xx)'),
  error: Nullable(Type.String(), 'Why the last attempt failed')
}, { additionalProperties: false })

export const DownloadJob = Type.Object({
  job_id: Type.String({ format: 'uuid' }),
  model_id: Type.String(),
  revision: Type.String({ description: 'As requested' }),
  commit: Type.String({ description: 'The commit the revision resolved to' }),
  status: Type.Union(['queued', 'downloading', 'verifying', 'complete', 'error', 'cancelled'].map((status) => Type.Literal(status))),
  progress: Type.Integer({ minimum: 0, maximum: 100, description: 'Percent, by bytes' }),
  bytes_downloaded: Type.Integer(),
  bytes_total: Type.Integer(),
  bytes_transferred: Type.Integer({ description: 'Bytes that came over the network for this job; 0 when the cache had everything' }),
  files_done: Type.Integer(),
  files_total: Type.Integer(),
  speed_bps: Type.Integer({ description: 'Bytes per second over the last few seconds' }),
  eta_seconds: Type.Union([Type.Integer(), Type.Null()]),
  current_files: Type.Array(Type.String(), { description: 'Files being transferred right now' }),
  allow_patterns: Type.Union([Type.Array(Type.String()), Type.Null()]),
  ignore_patterns: Type.Union([Type.Array(Type.String()), Type.Null()]),
  set_default: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
  started_at: Nullable(Type.String({ format: 'date-time' }), 'When the transfer started'),
  updated_at: Type.String({ format: 'date-time' }),
  completed_at: Nullable(Type.String({ format: 'date-time' }), 'When the job ended'),
  error: Type.Union([JobErrorSchema, Type.Null()], { description: 'Why the job ended in error or was stopped' }),
  callback: Type.Union([CallbackState, Type.Null()], { description: 'The delivery of the completion callback; null without callback_url' })
}, { $id: 'DownloadJob', title: 'DownloadJob', additionalProperties: false })

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
  ...DownloadJob.properties,
  ...JobCounts
}, { $id: 'DownloadProgress', title: 'DownloadProgress', additionalProperties: false, description: 'A job, plus how many jobs are active and queued' })

export const DownloadList = Type.Object({
  jobs: Type.Array(Type.Ref('DownloadJob'), { description: 'Newest first' }),
  ...JobCounts
}, { title: 'DownloadList', additionalProperties: false })
