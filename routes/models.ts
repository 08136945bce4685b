import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '../src/type-builder.js'
import type { Static } from 'typebox'
import { errorRef } from '../plugins/errors.js'
import { scanCachedModel, type CachedModel as ScannedModel } from '../src/cache/cache-scan.js'
import type { DefaultModelStore } from '../src/cache/default-model-store.js'
import { diskSpace, type DiskSpace } from '../src/cache/disk-space.js'
import { deleteModel } from '../src/downloads/model-deletion.js'
import { validateRepoId, validateRevision } from '../src/hub/repo-id.js'
import { RefTo, type Expect, type SameShape } from '../src/json-schema.js'
import { mergeParams, requiredModelId } from './download-input.js'

const MB = 1024 * 1024
const toMb = (bytes: number): number => Math.round((bytes / MB) * 10) / 10

const CachedRevision = Type.Object({
  commit: Type.String(),
  refs: Type.Array(Type.String(), { description: 'Branches and tags pointing at this commit' }),
  file_count: Type.Integer(),
  size_bytes: Type.Integer(),
  last_modified: Type.String({ format: 'date-time' })
}, { additionalProperties: false })

const CachedModel = Type.Object({
  model_id: Type.String(),
  revisions: Type.Array(CachedRevision, { description: 'Newest first' }),
  size_bytes: Type.Integer({ description: 'Unique blobs the snapshots use' }),
  size_mb: Type.Number(),
  file_count: Type.Integer(),
  incomplete_bytes: Type.Integer({ description: 'Partial downloads kept to resume' }),
  last_modified: Type.String({ format: 'date-time' }),
  is_default: Type.Boolean(),
  pinned: Type.Boolean({ description: 'Pinned (PUT /api/models/pin): never evicted by the cache quota' })
}, { additionalProperties: false })

const ModelList = Type.Object({
  cache_dir: Type.String(),
  models: Type.Array(CachedModel),
  model_count: Type.Integer(),
  total_bytes: Type.Integer(),
  total_mb: Type.Number(),
  disk: Type.Object({ total_bytes: Type.Integer(), free_bytes: Type.Integer() }, { additionalProperties: false })
}, { title: 'ModelList', additionalProperties: false })

const DeleteParams = Type.Object({
  model_id: Type.Optional(Type.String({ description: 'Required. The model to delete' })),
  revision: Type.Optional(Type.String({ description: 'Delete only this snapshot (commit, branch or tag) and the blobs no other revision uses' })),
  force: Type.Optional(Type.Boolean({ description: 'Cancel its running download and delete even the default model' }))
}, { $id: 'DeleteModelParams', title: 'DeleteModelParams' })

const DeleteResult = Type.Object({
  model_id: Type.String(),
  revision: Type.Union([Type.String(), Type.Null()]),
  freed_bytes: Type.Integer({ description: 'The sizes of the blobs deleted, as huggingface_hub counts them (links and refs are not counted)' }),
  size_mb: Type.Number({ description: 'freed_bytes in MiB' }),
  partial_bytes: Type.Integer({ description: 'Partial downloads (`.incomplete` files) deleted with the model, apart from freed_bytes; 0 for one revision' }),
  cancelled_jobs: Type.Array(Type.String(), { description: 'Downloads force=true cancelled' })
}, { title: 'DeleteModelResult', additionalProperties: false })

const DefaultModel = Type.Object({
  model_id: Type.Union([Type.String(), Type.Null()]),
  source: Type.Union([Type.Literal('state'), Type.Literal('env'), Type.Literal('none')], { description: 'state: set through this API; env: DEFAULT_MODEL' }),
  updated_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  cached: Type.Boolean({ description: 'Whether the model is in the cache' })
}, { title: 'DefaultModel', additionalProperties: false })

// The cache scan and the default-model store declare these as interfaces; tsc checks the answers still show all of them.
export type CachedModelAgrees = Expect<SameShape<Static<typeof CachedModel>, ScannedModel & { size_mb: number, is_default: boolean, pinned: boolean }>>
export type DiskAgrees = Expect<SameShape<Static<typeof ModelList>['disk'], DiskSpace>>
export type DefaultModelAgrees = Expect<SameShape<Static<typeof DefaultModel>, Awaited<ReturnType<DefaultModelStore['get']>> & { cached: boolean }>>

const modelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(DeleteParams)
  const cacheDir = app.config.hubCacheDir

  const defaultModelView = async (): Promise<Static<typeof DefaultModel>> => {
    const current = await app.defaultModel.get()
    const cached = current.model_id !== null && await scanCachedModel(cacheDir, current.model_id) !== undefined
    return { ...current, cached }
  }

  app.get('/models', {
    config: { scope: 'read' },
    schema: {
      operationId: 'listModels',
      summary: 'Models in the cache',
      description: [
        'What the cache directory holds, read from the disk:',
        'every model with its revisions (commit, refs, file count, size), total size, last change and whether it is the default, plus totals and free disk space.',
        'Models other tools downloaded into the same cache are listed too.'
      ].join(' '),
      tags: ['models'],
      response: { 200: { ...ModelList, description: 'The cached models' } }
    }
  }, async () => {
    // The scan is kept between calls (CachedScan says when it is read again); is_default is not part
    // of it but read at each call, so a change of the default model shows without invalidating anything.
    const [{ models, total_bytes: totalBytes }, disk, defaultModel, pinned] =
      await Promise.all([app.cachedScan.get(), diskSpace(cacheDir), app.defaultModel.get(), app.cacheControl.pinned()])
    return {
      cache_dir: cacheDir,
      models: models.map((model) => ({
        ...model, size_mb: toMb(model.size_bytes), is_default: model.model_id === defaultModel.model_id, pinned: pinned.has(model.model_id)
      })),
      model_count: models.length,
      total_bytes: totalBytes,
      total_mb: toMb(totalBytes),
      disk
    }
  })

  app.delete('/delete-model', {
    config: { scope: 'admin' },
    schema: {
      operationId: 'deleteModel',
      summary: 'Delete a model from the cache',
      description: [
        'Deletes a whole model, or with `revision` one snapshot and the blobs no other revision uses.',
        'Refuses (409) the default model and a model whose download is running, unless `force=true`, which cancels the download.',
        'Parameters may come in the query string or a JSON body.'
      ].join(' '),
      tags: ['models'],
      querystring: RefTo(DeleteParams),
      body: Type.Union([RefTo(DeleteParams), Type.Null()]),
      response: {
        200: { ...DeleteResult, description: 'Deleted; what was freed' },
        404: errorRef('The model (or that revision) is not in the cache'),
        409: errorRef('The default model, or a download of it is running; force=true overrides')
      }
    }
  }, async (request) => {
    const params = mergeParams(request.query, request.body)
    const modelId = requiredModelId(params)
    const revision = params.revision === undefined ? undefined : validateRevision(params.revision)
    const deleted = await deleteModel(cacheDir, app.downloads, app.defaultModel, { modelId, revision, force: params.force === true })
    app.cachedScan.invalidate()
    const { freedBytes, partialBytes, cancelledJobs } = deleted
    return {
      model_id: modelId,
      revision: revision ?? null,
      freed_bytes: freedBytes,
      size_mb: toMb(freedBytes),
      partial_bytes: partialBytes,
      cancelled_jobs: cancelledJobs
    }
  })

  app.get('/default-model', {
    config: { scope: 'read' },
    schema: {
      operationId: 'getDefaultModel',
      summary: 'The default model',
      description: 'The model the local stack should use: set through PUT, else DEFAULT_MODEL, else null; and whether it is in the cache.',
      tags: ['models'],
      response: { 200: { ...DefaultModel, description: 'The default model' } }
    }
  }, defaultModelView)

  app.put('/default-model', {
    config: { scope: 'admin' },
    schema: {
      operationId: 'setDefaultModel',
      summary: 'Set the default model',
      description: [
        'Sets (or with `null` clears) the default model. The choice is kept in a small state file inside the cache directory and survives restarts.',
        'With REDIS_URL it is kept in Redis too, and every replica answers it from the moment this answers. The model need not be cached yet.'
      ].join(' '),
      tags: ['models'],
      body: Type.Object({ model_id: Type.Union([Type.Null(), Type.String()], { description: '`org/name`, or null to clear' }) }),
      response: {
        200: { ...DefaultModel, description: 'The default model now' },
        503: errorRef('MD_STATE_STORE_UNAVAILABLE: REDIS_URL is set and Redis does not answer; nothing changed (Retry-After)')
      }
    }
  }, async (request) => {
    const { model_id: modelId } = request.body
    await app.defaultModel.set(modelId === null ? null : validateRepoId(modelId))
    // Made the default is a use: the cache quota evicts least recently used models first.
    if (modelId !== null) await app.cacheControl.recordUse(modelId)
    return defaultModelView()
  })
}

export default modelRoutes
