import { deleteCachedModel, deleteCachedRevision, resolveCachedCommit } from '../cache/cache-delete.js'
import { scanCachedModel } from '../cache/cache-scan.js'
import type { DefaultModelStore } from '../cache/default-model-store.js'
import { MdModelNotCachedError, MdModelProtectedError } from '../errors.js'
import type { DownloadManager } from './download-manager.js'

export interface DeleteModelRequest { modelId: string, revision?: string | undefined, force: boolean }
export interface DeletedModel { freedBytes: number, partialBytes: number, cancelledJobs: string[] }

/**
 * The rules of `DELETE /api/delete-model`: not cached is 404; the default model, and a model whose
 * download runs, are protected (409) unless forced, and forcing cancels the download first. 409, not
 * 400: the request is right, the state of the node is what stands in the way.
 */
export async function deleteModel (
  cacheDir: string,
  downloads: DownloadManager,
  defaultModel: DefaultModelStore,
  request: DeleteModelRequest
): Promise<DeletedModel> {
  const { modelId, revision, force } = request
  const model = await scanCachedModel(cacheDir, modelId)
  const commit = revision === undefined ? undefined : await resolveCachedCommit(cacheDir, modelId, revision)
  const running = await downloads.unfinishedJobsOf(modelId)
  // A model whose download has put nothing on disk yet is there all the same: protected, or with
  // force its download stopped, rather than a 404 that lets the download carry on.
  const present = revision === undefined ? model !== undefined || running.length > 0 : commit !== undefined
  if (!present) throw new MdModelNotCachedError(`${modelId}${revision === undefined ? '' : `@${revision}`} is not in the cache`)
  if (running.length > 0 && !force) {
    throw new MdModelProtectedError(`A download of ${modelId} is running (job ${running[0]!.job_id}); cancel it first or send force=true`)
  }
  // Deleting the last revision deletes the model: the default model is protected either way.
  const removesModel = revision === undefined || model?.revisions.every((cached) => cached.commit === commit) === true
  if (removesModel && (await defaultModel.get()).model_id === modelId && !force) {
    throw new MdModelProtectedError(`${modelId} is the default model; set another one (PUT /api/default-model) or send force=true`)
  }
  for (const job of running) await downloads.cancel(job.job_id)
  const freed = revision === undefined ? await deleteCachedModel(cacheDir, modelId) : await deleteCachedRevision(cacheDir, modelId, revision)
  return { freedBytes: freed?.blobBytes ?? 0, partialBytes: freed?.partialBytes ?? 0, cancelledJobs: running.map((job) => job.job_id) }
}
