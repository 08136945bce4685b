import { createHmac } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Type } from '../type-builder.js'
import type { Static } from 'typebox'
import { backoffDelay, parseRetryAfter } from '../downloads/retry.js'
import { errorCode } from '../error-code.js'
import { Nullable } from '../json-schema.js'
import { describeNetworkFailure } from '../outbound/network-failure.js'
import { sendDirect, type SendRequest } from '../outbound/outbound-dispatcher.js'
import { maskCallbackUrl } from './callback-url.js'

export interface CallbackSettings {
  /** Signs each body (x-modeldepot-signature: sha256=<hex HMAC>) when set. */
  secret: string | undefined
  /** Per attempt, headers and body together. */
  timeoutMs: number
  maxAttempts: number
  /** The wait after the first failed attempt; it doubles after each one. */
  retryBaseMs: number
}

/** What a job shows of its callback (part of the DownloadJob the API answers). */
export const CallbackStateSchema = Type.Object({
  url: Type.String({ description: 'The callback URL with every query value masked (resume URLs carry tokens)' }),
  attempts: Type.Integer({ minimum: 0, description: 'POSTs made so far; 0 until the job ends' }),
  last_status: Nullable(Type.Integer(), 'The HTTP status of the last attempt'),
  delivered_at: Nullable(Type.String({ format: 'date-time' }), 'When the receiver accepted it (2xx)'),
  error: Nullable(Type.String(), 'Why the last attempt failed')
}, { additionalProperties: false })
export type CallbackState = Static<typeof CallbackStateSchema>

export const newCallbackState = (url: string): CallbackState =>
  ({ url: maskCallbackUrl(url), attempts: 0, last_status: null, delivered_at: null, error: null })

function signature (secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
}

export interface CallbackLog { info: (obj: object, msg: string) => void }

// 429 asks to come back later; n8n answers 409 ("is running already") while the workflow has not
// reached its Wait node yet, which a download that ends quickly can beat.
const RETRIED = new Set([409, 429])
// n8n's 409 once the execution is over (its Wait timed out, or it was stopped): "The execution "7"
// has finished already." or "… has finished with error.". No retry can resume it.
const N8N_FINISHED = /\bhas finished\b/

/** `status`: this attempt's HTTP status, null when none came back. */
type Outcome = { status: number, delivered: true } | { status: number | null, delivered: false, retry: boolean, retryAfterMs?: number }

/**
 * POSTs a job's final state to its callback URL, e.g. an n8n Wait node's resume URL. Runs beside the
 * download engine, never in its way: retries with exponential backoff on network errors, 5xx, 429
 * and 409 (not n8n's 409 for an execution that has finished), gives up after `maxAttempts`, and
 * never follows a redirect (it could lead anywhere).
 */
export class CallbackSender {
  readonly #settings: CallbackSettings
  readonly #now: () => number
  readonly #log: CallbackLog | undefined
  readonly #request: SendRequest
  readonly #closing = new AbortController()
  readonly #pending = new Set<Promise<void>>()

  /** `request`: through the app's way out (its proxy); undici's global dispatcher when absent. */
  constructor (settings: CallbackSettings, now: () => number = Date.now, log?: CallbackLog, request: SendRequest = sendDirect) {
    this.#settings = settings
    this.#now = now
    this.#log = log
    this.#request = request
  }

  /**
   * Starts the delivery and answers at once; `onChange` runs after every attempt, `onSettled` once it
   * is delivered or given up (not when a shutdown stops it: another replica may take it up).
   */
  send (url: string, event: string, body: string, state: CallbackState, onChange: () => void, onSettled: () => void = () => {}): void {
    const delivery = this.#deliver(url, event, body, state, onChange).then((settled) => { if (settled) onSettled() }, () => {})
    this.#pending.add(delivery)
    void delivery.finally(() => this.#pending.delete(delivery))
  }

  /** Stops waiting between attempts and abandons those in flight. */
  async close (): Promise<void> {
    this.#closing.abort()
    await Promise.all(this.#pending)
  }

  /** True once delivered or given up; false when a shutdown stopped it first. */
  async #deliver (url: string, event: string, body: string, state: CallbackState, onChange: () => void): Promise<boolean> {
    const { maxAttempts, retryBaseMs } = this.#settings
    for (let attempt = 1; attempt <= maxAttempts && !this.#closing.signal.aborted; attempt++) {
      const started = performance.now()
      const outcome = await this.#attempt(url, event, body, state)
      const durationMs = Math.round(performance.now() - started)
      state.attempts = attempt
      // What an operator asks first when a Wait node never resumes: was it sent, and what came back.
      // The URL as the job shows it, its query values (a resume token) masked.
      this.#log?.info({
        callback_url: state.url,
        event,
        attempt,
        // This attempt's answer: a failure before any answer leaves the last status of an earlier one.
        status: outcome.status,
        duration_ms: durationMs,
        delivered: outcome.delivered,
        ...(outcome.delivered ? {} : { error: state.error, retry: outcome.retry && attempt < maxAttempts })
      }, outcome.delivered ? 'callback delivered' : 'callback attempt failed')
      onChange()
      if (outcome.delivered || !outcome.retry || attempt === maxAttempts) return true
      const delay = outcome.retryAfterMs ?? backoffDelay(attempt, { retries: maxAttempts, baseMs: retryBaseMs, maxMs: retryBaseMs * 2 ** (maxAttempts - 1) })
      await sleep(delay, undefined, { signal: this.#closing.signal }).catch(() => {})
    }
    return false
  }

  async #attempt (url: string, event: string, body: string, state: CallbackState): Promise<Outcome> {
    const { secret, timeoutMs } = this.#settings
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-modeldepot-event': event }
    if (secret !== undefined) headers['x-modeldepot-signature'] = signature(secret, body)
    // One attempt ends at its timeout or at close. (Not AbortSignal.any: tied to the long-lived
    // closing signal, every combined signal would be kept until shutdown.)
    const attempt = new AbortController()
    const timer = setTimeout(() => attempt.abort(new DOMException('callback timeout', 'TimeoutError')), timeoutMs)
    const stop = (): void => attempt.abort()
    this.#closing.signal.addEventListener('abort', stop, { once: true })
    try {
      const response = await this.#request(url, {
        method: 'POST',
        headers,
        body,
        signal: attempt.signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs
      })
      const status = response.statusCode
      // Only a 409's body is read: n8n says there whether the execution is still running or over.
      const reason = status === 409 ? await response.body.text().then((text) => text.slice(0, 1024), () => '') : ''
      if (status !== 409) await response.body.dump().catch(() => {})
      state.last_status = status
      if (status >= 200 && status < 300) {
        state.delivered_at = new Date(this.#now()).toISOString()
        state.error = null
        return { status, delivered: true }
      }
      if (status >= 300 && status < 400) {
        state.error = `the receiver answered ${status} (a redirect, not followed)`
        return { status, delivered: false, retry: false }
      }
      if (status === 409 && N8N_FINISHED.test(reason)) {
        state.error = 'the receiver answered 409: the n8n execution has finished (its Wait node timed out or it was stopped)'
        return { status, delivered: false, retry: false }
      }
      state.error = `the receiver answered ${status}`
      const retryAfter = response.headers['retry-after']
      const retryAfterMs = parseRetryAfter(typeof retryAfter === 'string' ? retryAfter : undefined, this.#now())
      return { status, delivered: false, retry: RETRIED.has(status) || status >= 500, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) }
    } catch (err) {
      const code = errorCode(err) ?? (err as Error).name
      const timedOut = (err as Error).name === 'TimeoutError' || code.startsWith('UND_ERR_HEADERS_TIMEOUT') || code.startsWith('UND_ERR_BODY_TIMEOUT')
      state.error = timedOut ? `no answer within ${timeoutMs} ms` : `the receiver could not be reached (${describeNetworkFailure(err) ?? code})`
      return { status: null, delivered: false, retry: true }
    } finally {
      clearTimeout(timer)
      this.#closing.signal.removeEventListener('abort', stop)
    }
  }
}
