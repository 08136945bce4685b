import { checkCallbackUrl, type AllowedHost } from '../src/callbacks/callback-url.js'
import { MAX_BYTES_PER_S_MIN } from '../src/downloads/byte-rate.js'
import { MdValidationError } from '../src/errors.js'
import type { DownloadRequest } from '../src/downloads/download-manager.js'
import { parsePatternList } from '../src/hub/file-patterns.js'
import { validateRepoId, validateRevision } from '../src/hub/repo-id.js'
import type { DownloadInput, VerifyInput } from './schemas/downloads.js'

/**
 * n8n users send parameters in the query string or a JSON body: both count, the body wins. Both are
 * the same schema's, validated; a body may be absent or JSON null.
 */
export const mergeParams = <Params extends object>(query: Params, body: Params | null | undefined): Params => ({ ...query, ...body })

export function requiredModelId (params: { model_id?: string | undefined }): string {
  if (params.model_id === undefined) throw new MdValidationError('model_id is required (in query string or body)')
  return validateRepoId(params.model_id)
}

/** `allowedCallbackHosts` is CALLBACK_ALLOWED_HOSTS; undefined means callbacks are off. */
export function downloadRequest (params: DownloadInput, allowedCallbackHosts: AllowedHost[] | undefined): DownloadRequest {
  return {
    modelId: requiredModelId(params),
    revision: params.revision === undefined ? 'main' : validateRevision(params.revision),
    allowPatterns: parsePatternList(params.allow_patterns, 'allow_patterns'),
    ignorePatterns: parsePatternList(params.ignore_patterns, 'ignore_patterns'),
    setDefault: params.set_default === true,
    callbackUrl: params.callback_url === undefined ? undefined : checkCallbackUrl(params.callback_url, allowedCallbackHosts),
    maxBytesPerS: byteRate(params.max_bytes_per_s, 'max_bytes_per_s'),
    waitForProvider: params.wait_for_provider
  }
}

/** A cap on bytes per second as the API takes it: 0 or null for none, else at least the smallest cap a transfer keeps. */
export function byteRate (value: number | null | undefined, field: string): number | null {
  if (value === undefined || value === null || value === 0) return null
  if (value < MAX_BYTES_PER_S_MIN) throw new MdValidationError(`${field} must be 0 (no cap) or at least ${MAX_BYTES_PER_S_MIN} bytes per second`)
  return value
}

/** A verify request: a cached revision to re-hash, and whether to fetch the bad files again. */
export function verifyRequest (params: VerifyInput, allowedCallbackHosts: AllowedHost[] | undefined): DownloadRequest {
  return {
    modelId: requiredModelId(params),
    revision: params.revision === undefined ? 'main' : validateRevision(params.revision),
    kind: 'verify',
    repair: params.repair === true,
    callbackUrl: params.callback_url === undefined ? undefined : checkCallbackUrl(params.callback_url, allowedCallbackHosts)
  }
}
