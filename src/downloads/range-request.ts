import type { Dispatcher } from 'undici'
import { errorCode } from '../error-code.js'
import { MdProviderUnavailableError } from '../errors.js'
import { hubError, type HubAnswer } from '../hub/hub-client.js'
import { describeNetworkFailure } from '../outbound/network-failure.js'
import { sendDirect, type SendRequest } from '../outbound/outbound-dispatcher.js'
import { RestartFileError } from './restart-file-error.js'
import { parseRetryAfter, RetryableError } from './retry.js'

/** What one request for a file's bytes needs: the Hub, how to reach it, and how long a silence may last. */
export interface HubConnection {
  endpoint: string
  /**
   * Sent to the Hub only (a redirect to another host, the CDN, drops them); read as each request is
   * sent, so a token rotated mid-download is used by the next part or retry, never the revoked one.
   */
  hubHeaders: () => Record<string, string>
  /** Sends a request to the Hub itself (not its CDN) through the huggingface provider. */
  throughHub: <T extends HubAnswer>(request: () => Promise<T>, signal?: AbortSignal) => Promise<T>
  readTimeoutMs: number
  /** Sends through the app's way out (its proxy); undici's global dispatcher when absent. */
  request?: SendRequest | undefined
}

export type RangeAnswer = Dispatcher.ResponseData

/**
 * A file's Hub URL, and the address its bytes were last served from (where the Hub redirected: its
 * CDN). A file's parts share one, so only the parts that start before the Hub has answered ask it;
 * the later ones go to the CDN directly: a 1 GiB file in 16 MiB parts costs as many of the Hub's
 * resolver calls (which it limits per 5 minutes) as it has connections, not one per part.
 */
export class FileAddress {
  /** Where the Hub last sent a request for this file, with whether the Hub's headers go there too. */
  served: { url: URL, hubHeaders: boolean } | undefined

  constructor (readonly url: string) {}
}

/** What a CDN answers to a signed address that expired or was revoked: ask the Hub for a new one. */
const STALE_ADDRESS = new Set([401, 403, 404, 410])

/**
 * GET bytes `from`–`to` of the file at `address` (without `to`, the rest of it), following the Hub's
 * redirect to its CDN, or straight from the CDN address an earlier part of the file was sent to; one
 * the CDN no longer takes is asked of the Hub again. Answers only a 200 from byte 0 or the 206 asked
 * for; see checkRangeAnswer.
 */
export async function openRange (
  address: FileAddress | string, hub: HubConnection, from: number, to: number | undefined, signal: AbortSignal
): Promise<RangeAnswer> {
  const file = typeof address === 'string' ? new FileAddress(address) : address
  const range: Record<string, string> = from === 0 && to === undefined ? {} : { range: `bytes=${from}-${to ?? ''}` }
  const served = file.served
  if (served !== undefined) {
    const response = await send(served.url, () => ({ ...(served.hubHeaders ? hub.hubHeaders() : {}), ...range }), hub, signal)
    if (!STALE_ADDRESS.has(response.statusCode)) {
      await checkRangeAnswer(response, from, hub.endpoint)
      return response
    }
    await response.body.dump().catch(() => {})
    if (file.served === served) file.served = undefined
  }
  let target = new URL(file.url)
  let hubHeaders = true
  for (let hop = 0; hop < 5; hop++) {
    const response = await send(target, () => ({ ...(hubHeaders ? hub.hubHeaders() : {}), ...range }), hub, signal)
    const { statusCode } = response
    if (statusCode >= 300 && statusCode < 400) {
      const location = response.headers.location
      await response.body.dump()
      if (typeof location !== 'string') throw new RetryableError(`the Hub answered ${statusCode} without a Location`)
      const next = new URL(location, target)
      if (next.host !== target.host) hubHeaders = false
      target = next
      continue
    }
    await checkRangeAnswer(response, from, hub.endpoint)
    if (hop > 0) file.served = { url: target, hubHeaders }
    return response
  }
  throw new RetryableError('too many redirects')
}

/**
 * Passes a 200 from byte 0 and a 206 that starts at `from`; anything else has its body drained and
 * is thrown: RestartFileError when the server cannot continue at `from` (a 200 to a Range request,
 * a 206 at another offset, a 416), RetryableError for a 429 or 5xx, the Hub's own error otherwise.
 */
export async function checkRangeAnswer (response: RangeAnswer, from: number, endpoint: string): Promise<void> {
  const { statusCode, headers } = response
  if (statusCode === 200 && from === 0) return
  if (statusCode === 206 && contentRangeStart(headers['content-range']) === from) return
  await response.body.dump().catch(() => {})
  // Only a single stream from byte 0 can work with a server that ignores Range.
  if (statusCode === 200) throw new RestartFileError(`the server ignored a Range request at byte ${from}; the file is fetched again`)
  if (statusCode === 206 || statusCode === 416) {
    throw new RestartFileError(`the server could not resume at byte ${from} (${statusCode}); the file is fetched again`)
  }
  if (statusCode === 429 || statusCode >= 500) {
    const retryAfter = headers['retry-after']
    throw new RetryableError(`the server answered ${statusCode}`, parseRetryAfter(typeof retryAfter === 'string' ? retryAfter : undefined))
  }
  throw await hubError(new Response(null, { status: statusCode, headers: flatHeaders(headers) }), endpoint)
}

async function send (url: URL, headers: () => Record<string, string>, hub: HubConnection, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
  // The headers are made when the Hub's limiter lets the request go, not when it was queued.
  const get = async (): Promise<Dispatcher.ResponseData> => (hub.request ?? sendDirect)(url, {
    method: 'GET',
    headers: headers(),
    signal,
    // No bytes for this long, before the first byte or between two, is a stall.
    headersTimeout: hub.readTimeoutMs,
    bodyTimeout: hub.readTimeoutMs
  })
  try {
    // The Hub shares its backoff with every other call to it; the CDN is not the Hub.
    return url.host === new URL(hub.endpoint).host ? await hub.throughHub(get, signal) : await get()
  } catch (err) {
    if (signal.aborted) throw err
    const refused = providerRefusal(err)
    if (refused !== undefined) throw new RetryableError(`the Hub is ${refused.status} (it takes calls again in ${refused.retryAfterS} s)`, refused.retryAfterS * 1000)
    throw new RetryableError(`the request to ${url.host} failed (${codeOf(err)})`)
  }
}

/** The huggingface provider refused to send (it cools down): when it will take calls again. */
function providerRefusal (err: unknown): { status: string, retryAfterS: number } | undefined {
  if (!(err instanceof MdProviderUnavailableError)) return undefined
  return { status: err.details.status, retryAfterS: err.details.retry_after_s }
}

function contentRangeStart (value: unknown): number | undefined {
  const match = typeof value === 'string' ? /^bytes (\d+)-/.exec(value) : null
  return match === null ? undefined : Number(match[1])
}

function flatHeaders (headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value
  return out
}

/** What a failed request says about itself, for a message: its code, else its message. */
export function codeOf (err: unknown): string {
  return describeNetworkFailure(err) ?? errorCode(err) ?? (err as Error).message
}
