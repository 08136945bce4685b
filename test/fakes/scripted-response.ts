// Status sequences a test scripts for a fake's endpoints: "429, then 503, then normal".
// Shared by FakeProvider and FakeHub so both read the same way in tests.

/**
 * A number is that status: 4xx/5xx with the fake's standard error body, 2xx lets the request through
 * to normal behaviour. The object form adds a Retry-After header (seconds), a Location header (a 3xx
 * then redirects there), a wait before answering, or a body of its own (sent as JSON with the status,
 * whatever the status).
 */
export type ScriptedResponse = number | ScriptedStep

export interface ScriptedStep {
  status: number
  retryAfter?: number
  location?: string
  delayMs?: number
  body?: unknown
  /** The Hub's RateLimit (and, with quota and windowS, RateLimit-Policy) headers on this answer. */
  rateLimit?: { bucket: string, remaining: number, resetS: number, quota?: number, windowS?: number }
  /** The Hub's X-Error-Code on an error answer (RepoNotFound, GatedRepo, …). */
  errorCode?: string
}

/** Queues of scripted responses, each for the requests whose path its key matches, played in order. */
export class ResponseScripts {
  private readonly queues: Array<{ key: string, steps: ScriptedStep[] }> = []

  constructor (readonly matches: (key: string, path: string) => boolean) {}

  /** Appends to the queue for `key`, so scripting twice plays both sequences one after the other. */
  add (key: string, responses: ScriptedResponse[]): void {
    const steps = responses.map(toStep)
    const queue = this.queues.find((q) => q.key === key)
    if (queue) queue.steps.push(...steps)
    else this.queues.push({ key, steps })
  }

  clear (): void {
    this.queues.length = 0
  }

  /** The next scripted step for a request to `path`, consumed; undefined when nothing is scripted. */
  take (path: string): ScriptedStep | undefined {
    return this.queues.find((q) => q.steps.length > 0 && this.matches(q.key, path))?.steps.shift()
  }
}

/** A 2xx without a body of its own is answered as if nothing were scripted (auth included). */
export function passesThrough (step: ScriptedStep): boolean {
  return step.status >= 200 && step.status < 300 && step.body === undefined
}

export function stepHeaders (step: ScriptedStep | undefined): Record<string, string> {
  return {
    ...(step?.retryAfter !== undefined && { 'Retry-After': String(step.retryAfter) }),
    ...(step?.location !== undefined && { Location: step.location }),
    ...(step?.rateLimit !== undefined && rateLimitOf(step.rateLimit))
  }
}

/** The Hub's two headers exactly as it writes them (IETF draft-ietf-httpapi-ratelimit-headers-09, quoted names). */
export function rateLimitHeaders (bucket: string, remaining: number, resetS: number, quota?: number, windowS?: number): Record<string, string> {
  return {
    RateLimit: `"${bucket}";r=${remaining};t=${resetS}`,
    ...(quota !== undefined && windowS !== undefined && { 'RateLimit-Policy': `"fixed window";"${bucket}";q=${quota};w=${windowS}` })
  }
}

function rateLimitOf ({ bucket, remaining, resetS, quota, windowS }: NonNullable<ScriptedStep['rateLimit']>): Record<string, string> {
  return rateLimitHeaders(bucket, remaining, resetS, quota, windowS)
}

function toStep (response: ScriptedResponse): ScriptedStep {
  const step = typeof response === 'number' ? { status: response } : response
  // A typo such as 4290 would otherwise surface as a confusing socket error inside the fake.
  if (!Number.isInteger(step.status) || step.status < 200 || step.status > 599) throw new Error(`scripted status must be 200–599, got ${step.status}`)
  return step
}
