import type { DownloadRequest } from './download-plan.js'

/**
 * The same model, revision, patterns and callback (and kind: a verify is not a download): a second request for it joins the first. Other
 * patterns are another download (it would otherwise be answered with a job that skips its files);
 * the blobs both want are still fetched once.
 */
export function sameDownload (a: DownloadRequest, b: DownloadRequest): boolean {
  return sameDownloadKey(a) === sameDownloadKey(b)
}

/** What makes two requests the same download, as one string (a shared store keys the unfinished job by it). */
export function sameDownloadKey (request: DownloadRequest): string {
  const patterns = (list: string[] | undefined): string[] | null => list === undefined ? null : [...new Set(list)].sort()
  const key = [request.modelId, request.revision, request.callbackUrl ?? null, patterns(request.allowPatterns), patterns(request.ignorePatterns)]
  // A verify of a revision is not its download (and a repair is not a plain check).
  return JSON.stringify(request.kind === 'verify' ? [...key, 'verify', request.repair === true] : key)
}
