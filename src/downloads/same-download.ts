import type { DownloadRequest } from './download-plan.js'

/**
 * The same model, revision, patterns and callback: a second request for it joins the first. Other
 * patterns are another download (it would otherwise be answered with a job that skips its files);
 * the blobs both want are still fetched once.
 */
export function sameDownload (a: DownloadRequest, b: DownloadRequest): boolean {
  return a.modelId === b.modelId && a.revision === b.revision && a.callbackUrl === b.callbackUrl &&
    samePatterns(a.allowPatterns, b.allowPatterns) && samePatterns(a.ignorePatterns, b.ignorePatterns)
}

function samePatterns (a: string[] | undefined, b: string[] | undefined): boolean {
  const key = (patterns: string[] | undefined): string => JSON.stringify(patterns === undefined ? null : [...new Set(patterns)].sort())
  return key(a) === key(b)
}
