import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from '../src/type-builder.js'
import { errorRef } from '../plugins/errors.js'
import type { Scope } from '../src/auth/scopes.js'
import { curlCommand, hfDownloadCommand } from '../src/downloads/download-commands.js'
import { DownloadJobSchema, type DownloadJob } from '../src/downloads/download-job.js'
import type { DownloadManager } from '../src/downloads/download-manager.js'
import { MdJobNotFoundError } from '../src/errors.js'
import { validateRepoId } from '../src/hub/repo-id.js'
import { RefTo } from '../src/json-schema.js'
import { byteRate, downloadRequest, mergeParams, verifyRequest } from './download-input.js'
import { DownloadList, DownloadParams, DownloadPlan, DownloadProgress, VerifyParams, type DownloadInput } from './schemas/downloads.js'

const jobRef = (description: string) => RefTo(DownloadJobSchema, { description })
const JobIdParams = Type.Object({ job_id: Type.String({ description: 'The job_id a download answered with' }) })

/** The scope a download request needs once its parameters are validated: a plan only reads. */
function downloadScope (request: FastifyRequest): Scope {
  const input = mergeParams(request.query as DownloadInput, request.body as DownloadInput | null)
  return input.auto === false ? 'read' : 'download'
}

const downloadRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(DownloadParams)
  app.addSchema(DownloadJobSchema)
  app.addSchema(DownloadPlan)
  app.addSchema(DownloadProgress)
  app.addSchema(VerifyParams)

  app.post('/download-model', {
    // A plan (auto=false) downloads nothing: a read key may ask for one.
    config: { scope: 'download', scopeOfRequest: downloadScope },
    schema: {
      operationId: 'downloadModel',
      summary: 'Download a model into the cache',
      description: [
        'Starts a background download of a Hub model at a revision into the Hugging Face cache layout (`models--{org}--{name}`), where transformers, vLLM and TGI find it.',
        [
          'Parameters may come in the query string or a JSON body.',
          'Answers 202 with the job and a `Location` to it;',
          '200 with the same job when that model, revision, patterns and `callback_url` are already queued or running;',
          '200 with a `complete` job (no bytes transferred) when the cache already has it.'
        ].join(' '),
        [
          'With `callback_url`, the job is POSTed there when it ends',
          '(headers `x-modeldepot-event` and, with CALLBACK_SECRET, `x-modeldepot-signature: sha256=<hex HMAC of the body>`);',
          'a URL whose host is not in CALLBACK_ALLOWED_HOSTS, not http(s), or with credentials is refused with 400 and nothing starts.'
        ].join(' '),
        'With `auto=false` nothing is downloaded: 200 with the plan (commit, files, sizes, what is cached, free space, and the same download as a curl call and an `hf download` command); a key with the `read` scope may ask for a plan.',
        [
          'While the Hub cools down (after a 429, or down after failures) the job is still accepted (202), `queued` with `waiting: {reason: "provider_cooldown", until}`',
          'and an empty `commit` until it is planned; it starts by itself when the cooldown ends.',
          '`wait_for_provider=false` answers 503 `MD_PROVIDER_UNAVAILABLE` instead, and so does a plan (`auto=false`), which needs the Hub\'s answer now.'
        ].join(' ')
      ].join('\n\n'),
      tags: ['models'],
      querystring: RefTo(DownloadParams),
      body: Type.Union([RefTo(DownloadParams), Type.Null()]),
      // The request modeldepot makes to callback_url when the job ends (OpenAPI callbacks).
      callbacks: {
        downloadEnded: {
          '{$request.body#/callback_url}': {
            post: {
              requestBody: {
                description: [
                  'The job as GET /api/downloads/{job_id} answers it, when it ended.',
                  'Headers: `x-modeldepot-event` (complete, error or cancelled) and, with CALLBACK_SECRET, `x-modeldepot-signature: sha256=<hex HMAC-SHA256 of the raw body>`.'
                ].join(' '),
                required: true,
                content: { 'application/json': { schema: RefTo(DownloadJobSchema) } }
              },
              responses: { '2XX': { description: 'Delivered. Network errors, 5xx, 429 and 409 are retried with backoff (CALLBACK_MAX_ATTEMPTS); a redirect is not followed; any other answer ends the delivery.' } }
            }
          }
        }
      },
      response: {
        200: { description: 'The job already doing it, a complete job when the cache has it all, or (auto=false) the plan', anyOf: [RefTo(DownloadJobSchema), RefTo(DownloadPlan)] },
        202: jobRef('Started (or queued); Location points to the job'),
        400: errorRef('A bad parameter, or a callback_url that is not allowed (MD_CALLBACK_NOT_ALLOWED, MD_CALLBACKS_DISABLED)'),
        403: errorRef('The model is gated or private and HF_TOKEN cannot read it'),
        404: errorRef('No such model, revision or file on the Hub'),
        502: errorRef('The Hub could not be reached or answered an error'),
        503: errorRef('The Hub is cooling down and the request cannot wait for it (wait_for_provider=false, or auto=false): MD_PROVIDER_UNAVAILABLE with Retry-After'),
        507: errorRef('Not enough free disk space for the bytes still missing')
      }
    }
  }, async (request, reply) => {
    const input = mergeParams(request.query, request.body)
    const download = downloadRequest(input, app.config.callbacks.allowedHosts)
    if (input.auto === false) {
      const plan = await app.downloads.plan(download)
      const commandInput = { ...download, baseUrl: baseUrlOf(request), cacheDir: app.downloads.cacheDir }
      return {
        model_id: plan.model_id,
        revision: plan.revision,
        commit: plan.commit,
        files: plan.files.map((file) => ({ path: file.path, size: file.size, cached: file.cached })),
        file_count: plan.files.length,
        bytes_total: plan.bytes_total,
        bytes_cached: plan.bytes_cached,
        bytes_missing: plan.bytes_missing,
        free_bytes: plan.free_bytes,
        curl: curlCommand(commandInput),
        hf_cli: hfDownloadCommand(commandInput)
      }
    }
    const { job, outcome } = await app.downloads.start(download)
    reply.header('location', `/api/downloads/${job.job_id}`)
    reply.code(outcome === 'created' ? 202 : 200)
    return job
  })

  app.post('/models/verify', {
    config: { scope: 'download' },
    schema: {
      operationId: 'verifyModel',
      summary: 'Verify a cached model, and repair it',
      description: [
        'Re-hashes every file of a cached revision offline, from what the cache itself records, as `hf cache verify` checks a file:',
        'an LFS file\'s blob is named by its sha256, any other file\'s by its git blob sha1. Nothing is asked of the Hub.',
        'It runs as a job (`kind: "verify"`) in /api/downloads/{job_id}, with progress by bytes hashed, and takes no download slot (MAX_CONCURRENT_DOWNLOADS);',
        'a blob of 8 MiB or more is hashed on a hash thread, not on the thread that answers requests;',
        'it ends `complete` with `verify: {mismatched, missing, unchecked}` (paths), whatever it found.',
        'With `repair=true` it then removes the mismatched blobs and fetches exactly the mismatched and missing files again, at the same commit, checking their hashes as every download does;',
        'meanwhile its status is `downloading` and its counts are those of the files it fetches, and it ends with `verify.repaired`.',
        'Answers 202 with the job and a `Location`; 200 with the same verify when it is already queued or running.',
        'A model being verified is never evicted, and deleting it answers 409 as for a download. Parameters may come in the query string or a JSON body (the body wins).'
      ].join(' '),
      tags: ['models'],
      querystring: RefTo(VerifyParams),
      body: Type.Union([RefTo(VerifyParams), Type.Null()]),
      response: {
        200: jobRef('The same verify, already queued or running'),
        202: jobRef('Started; Location points to the job'),
        400: errorRef('A bad parameter, or a callback_url that is not allowed'),
        404: errorRef('MD_MODEL_NOT_CACHED: that model or revision is not in the cache'),
        503: errorRef('MD_STATE_STORE_UNAVAILABLE: REDIS_URL is set and Redis does not answer (Retry-After)')
      }
    }
  }, async (request, reply) => {
    const verify = verifyRequest(mergeParams(request.query, request.body), app.config.callbacks.allowedHosts)
    const { job, outcome } = await app.downloads.verify(verify)
    reply.header('location', `/api/downloads/${job.job_id}`)
    reply.code(outcome === 'created' ? 202 : 200)
    return job
  })

  app.get('/download-progress', {
    config: { scope: 'read' },
    schema: {
      operationId: 'getDownloadProgress',
      summary: 'Progress of a download',
      description: [
        'With no parameter, the most recent job; `job_id` or `model_id` select one.',
        '`wait=N` (seconds, at most 60) holds the answer until the job ends (or is paused) or N seconds pass, so a polling loop needs no Wait node.',
        'Also counts the active and queued jobs.'
      ].join(' '),
      tags: ['models'],
      querystring: Type.Object({
        job_id: Type.Optional(Type.String()),
        model_id: Type.Optional(Type.String({ description: 'The newest job of this model' })),
        wait: Type.Optional(Type.Integer({ minimum: 0, maximum: 60, description: 'Seconds to hold the answer until the job ends' }))
      }),
      response: {
        200: RefTo(DownloadProgress, { description: 'The job as it is now (or when it ended, with wait)' }),
        404: errorRef('No such job, or no download has been started yet')
      }
    }
  }, async (request) => {
    const { job_id: jobId, model_id: modelId, wait } = request.query
    const selected = await selectJob(app.downloads, jobId, modelId)
    const job = await app.downloads.waitForFinal(selected.job_id, (wait ?? 0) * 1000)
    const counts = await app.downloads.counts()
    return { ...job, active_downloads: counts.active, queued_downloads: counts.queued }
  })

  app.get('/downloads', {
    config: { scope: 'read' },
    schema: {
      operationId: 'listDownloads',
      summary: 'All download jobs',
      description: 'The jobs of this run and the recent history kept across restarts (JOB_HISTORY_MAX, JOB_HISTORY_MAX_AGE_S), newest first, with the counts of active and queued jobs.',
      tags: ['models'],
      response: { 200: { ...DownloadList, description: 'The jobs' } }
    }
  }, async () => {
    const [counts, jobs] = await Promise.all([app.downloads.counts(), app.downloads.list()])
    return { jobs, active_downloads: counts.active, queued_downloads: counts.queued }
  })

  app.get('/downloads/:job_id', {
    config: { scope: 'read' },
    schema: {
      operationId: 'getDownload',
      summary: 'One download job',
      description: 'The job with its progress, speed, ETA and, when it failed, the error with a hint.',
      tags: ['models'],
      params: JobIdParams,
      response: { 200: jobRef('The job'), 404: errorRef('No such job') }
    }
  }, async (request) => app.downloads.get(request.params.job_id))

  app.delete('/downloads/:job_id', {
    config: { scope: 'download' },
    schema: {
      operationId: 'cancelDownload',
      summary: 'Cancel a download',
      description: 'Stops a queued or running job. Its partial files stay in the cache so the same request resumes later, unless `purge=true`. A job that already ended is answered as it is.',
      tags: ['models'],
      params: JobIdParams,
      querystring: Type.Object({ purge: Type.Optional(Type.Boolean({ description: 'Also delete the partial files' })) }),
      response: { 200: jobRef('The job, now cancelled (or as it ended)'), 404: errorRef('No such job') }
    }
  }, async (request) => {
    return app.downloads.cancel(request.params.job_id, request.query.purge === true)
  })

  app.patch('/downloads/:job_id', {
    config: { scope: 'download' },
    schema: {
      operationId: 'updateDownload',
      summary: 'Change a download\'s cap',
      description: [
        'Sets the job\'s own cap on bytes per second (`max_bytes_per_s`, at least 65536; 0 or null removes it) for a queued, running or paused job,',
        'on whichever replica runs it, for its transfers under way too, within a second. The server\'s cap (PATCH /api/limits) still holds: the job gets the smaller.',
        'Kept with the job (the journal, or Redis), so it holds after a restart, a resume or a takeover. A job that has ended is refused with 409.'
      ].join(' '),
      tags: ['models'],
      params: JobIdParams,
      body: Type.Object({
        max_bytes_per_s: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: 'Bytes per second, at least 65536; 0 or null for no cap of the job\'s own' })
      }, { additionalProperties: false }),
      response: {
        200: jobRef('The job, with its new cap'),
        400: errorRef('A cap below 65536 bytes per second'),
        404: errorRef('No such job'),
        409: errorRef('The job has ended (MD_JOB_ENDED)'),
        503: errorRef('MD_STATE_STORE_UNAVAILABLE: REDIS_URL is set and Redis does not answer (Retry-After)')
      }
    }
  }, async (request) => app.downloads.setByteRate(request.params.job_id, byteRate(request.body.max_bytes_per_s, 'max_bytes_per_s')))

  app.post('/downloads/:job_id/pause', {
    config: { scope: 'download' },
    schema: {
      operationId: 'pauseDownload',
      summary: 'Pause a download',
      description: [
        'Pauses a queued or running job, on whichever replica runs it: its connections close, its partial files stay, and its slot goes to the next queued job.',
        'Its status is `paused` (in progress, the list and the event stream) until it is resumed, across restarts too. A pause sends no completion callback: the callback comes when the job ends.',
        'A paused job is answered as it is; one that has ended is refused with 409.'
      ].join(' '),
      tags: ['models'],
      params: JobIdParams,
      response: { 200: jobRef('The job, now paused'), 404: errorRef('No such job'), 409: errorRef('The job has ended (MD_JOB_ENDED)') }
    }
  }, async (request) => app.downloads.pause(request.params.job_id))

  app.post('/downloads/:job_id/resume', {
    config: { scope: 'download' },
    schema: {
      operationId: 'resumeDownload',
      summary: 'Resume a paused download',
      description: 'Puts a paused job back in the queue, with the same job_id and callback; it fetches only what is missing. A job that is not paused is answered as it is; one that has ended is refused with 409.',
      tags: ['models'],
      params: JobIdParams,
      response: { 200: jobRef('The job, queued again (or already running)'), 404: errorRef('No such job'), 409: errorRef('The job has ended (MD_JOB_ENDED)') }
    }
  }, async (request) => app.downloads.resumeJob(request.params.job_id))
}

export default downloadRoutes

async function selectJob (downloads: DownloadManager, jobId: string | undefined, modelId: string | undefined): Promise<DownloadJob> {
  if (jobId !== undefined) return downloads.get(jobId)
  const jobs = await downloads.list()
  if (modelId !== undefined) {
    const id = validateRepoId(modelId)
    const newest = jobs.find((job) => job.model_id === id)
    if (newest === undefined) throw new MdJobNotFoundError(`for ${id}`)
    return newest
  }
  const latest = jobs[0]
  if (latest === undefined) throw new MdJobNotFoundError('yet: no download has been started')
  return latest
}

function baseUrlOf (request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`
}
