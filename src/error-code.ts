/**
 * The string `code` of anything thrown (ours `MD_*`, Node's `ENOSPC`, undici's `UND_ERR_*`), or
 * undefined. Not every thrown thing has one: a DOMException's `code` is a number.
 */
export function errorCode (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** Why a request to an upstream failed, as a code: ETIMEDOUT for our deadline, else the network's (ECONNREFUSED, UND_ERR_SOCKET…). */
export function failureCode (err: unknown): string | undefined {
  if ((err as Error | null)?.name === 'TimeoutError') return 'ETIMEDOUT'
  return errorCode((err as { cause?: unknown } | null)?.cause) ?? errorCode(err)
}

/** Ours, to pass on as it is (a cooldown, a refusal), rather than wrap as an upstream failure. */
export const isOwnError = (err: unknown): boolean => errorCode(err)?.startsWith('MD_') === true
