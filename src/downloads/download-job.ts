import { Type } from '../type-builder.js'
import type { Static } from 'typebox'
import { CallbackStateSchema } from '../callbacks/callback-sender.js'
import { LiteralUnion, Nullable } from '../json-schema.js'

// A job as the API answers it is declared once, here, as JSON Schema (TypeBox): the routes document
// and serialize it with this schema, the code uses the type derived from it, so the two cannot drift.

export const JOB_STATUSES = ['queued', 'downloading', 'verifying', 'paused', 'complete', 'error', 'cancelled'] as const
export const JobStatusSchema = LiteralUnion(JOB_STATUSES)
export type JobStatus = Static<typeof JobStatusSchema>

export const FINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['complete', 'error', 'cancelled'])
export const isFinal = (status: JobStatus): boolean => FINAL_STATUSES.has(status)

export const JobErrorSchema = Type.Object({
  code: Type.String(),
  message: Type.String(),
  hint: Type.Optional(Type.String())
}, { additionalProperties: false })
export type JobError = Static<typeof JobErrorSchema>

export const JobWaitingSchema = Type.Object({
  reason: Type.Literal('provider_cooldown', { description: 'The Hub provider is cooling down (a 429, or down after failures)' }),
  until: Type.String({ format: 'date-time', description: 'When the cooldown ends and the job starts' })
}, { additionalProperties: false, description: 'Present while a queued job waits for the Hub to take calls again; it starts then' })
export type JobWaiting = Static<typeof JobWaitingSchema>

export const JOB_KINDS = ['download', 'verify'] as const
export type JobKind = (typeof JOB_KINDS)[number]

export const VerifyResultSchema = Type.Object({
  mismatched: Type.Array(Type.String(), { description: 'Files whose content does not hash to the name of the blob they link to' }),
  missing: Type.Array(Type.String(), { description: 'Files whose link points to a blob that is not in the cache' }),
  unchecked: Type.Array(Type.String(), { description: 'Files the cache records no hash for (a copied file, a link out of blobs/): not checked' }),
  repaired: Type.Optional(Type.Array(Type.String(), { description: 'With repair=true: the mismatched and missing files fetched again from the Hub and checked' }))
}, { additionalProperties: false, description: 'A verify job\'s findings, once every file is checked' })
export type VerifyResult = Static<typeof VerifyResultSchema>

/** A download as the API shows it; the job store (job-store.ts) is the only code that changes one. */
export const DownloadJobSchema = Type.Object({
  job_id: Type.String({ format: 'uuid' }),
  kind: Type.Optional(LiteralUnion(JOB_KINDS, { description: 'download (the default), or verify: a re-hash of a cached revision (POST /api/models/verify)' })),
  model_id: Type.String(),
  revision: Type.String({ description: 'As requested' }),
  commit: Type.String({ description: 'The commit the revision resolved to; empty while the job waits for the Hub to be asked (`waiting`)' }),
  status: JobStatusSchema,
  waiting: Type.Optional(JobWaitingSchema),
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
  max_bytes_per_s: Type.Optional(Nullable(Type.Integer(), 'This job\'s own cap on bytes per second (null: none); the server\'s applies as well')),
  created_at: Type.String({ format: 'date-time' }),
  started_at: Nullable(Type.String({ format: 'date-time' }), 'When the transfer started'),
  updated_at: Type.String({ format: 'date-time' }),
  completed_at: Nullable(Type.String({ format: 'date-time' }), 'When the job ended'),
  error: Type.Union([JobErrorSchema, Type.Null()], { description: 'Why the job ended in error or was stopped' }),
  callback: Type.Union([CallbackStateSchema, Type.Null()], { description: 'The delivery of the completion callback; null without callback_url' }),
  verify: Type.Optional(VerifyResultSchema)
}, { $id: 'DownloadJob', title: 'DownloadJob', additionalProperties: false })
export type DownloadJob = Static<typeof DownloadJobSchema>
