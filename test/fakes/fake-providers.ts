import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { openAI, openRouter, type Answer, type Auth, type FakeModel, type Flavour } from './fake-provider-flavours.js'
import { passesThrough, ResponseScripts, stepHeaders, type ScriptedResponse, type ScriptedStep } from './scripted-response.js'

// A fake AI provider on a real socket, in two flavours: OpenRouter (public model list, key info) and
// an OpenAI-compatible server (model list behind a key). Tests script status sequences, add latency,
// rotate keys, and read back every request with its timing and the peak concurrency.

export type { FakeModel } from './fake-provider-flavours.js'
export type { ScriptedResponse } from './scripted-response.js'

export interface FakeProviderOptions {
  kind: 'openrouter' | 'openai'
  /** The accepted bearer tokens; a request with any other token, or none, gets 401 where a key is needed. */
  tokens?: string[]
  /** Defaults to two models typical of the flavour. */
  models?: FakeModel[]
  /** Latency added to every response, so a test can hold requests in flight. */
  delayMs?: number
}

export interface ProviderRequest {
  method: string
  /** The path as received, without the query: '/api/v1/models', not '/models'. */
  path: string
  authorization?: string
  /** 0 until the status line is written. */
  status: number
  /** Date.now() when the request arrived and when its response ended or its socket closed. */
  startedAt: number
  endedAt?: number
}

export class FakeProvider {
  /** The base URL a user configures: …/api/v1 for OpenRouter, …/v1 for OpenAI-compatible. */
  readonly url: string
  readonly requests: ProviderRequest[] = []
  private readonly server: Server
  private readonly flavour: Flavour
  private readonly delayMs: number
  private models: FakeModel[]
  private tokens: Set<string>
  /** Called as each request arrives, e.g. to move a test's clock so the call takes that long. */
  onRequest: ((path: string) => void) | undefined
  private readonly scripts = new ResponseScripts((key, path) => key === path)
  private inFlight = 0
  private peak = 0
  /** Ends pending delays on close(), so no timer outlives the fake. */
  private readonly closing = new AbortController()
  private stalls = 0

  private constructor (server: Server, origin: string, options: FakeProviderOptions) {
    this.server = server
    this.flavour = options.kind === 'openrouter' ? openRouter : openAI
    this.url = origin + this.flavour.basePath
    this.delayMs = options.delayMs ?? 0
    this.models = options.models ?? this.flavour.defaultModels
    this.tokens = new Set(options.tokens ?? [])
    server.on('request', (req: IncomingMessage, res: ServerResponse) => { void this.handle(req, res) })
  }

  static async start (options: FakeProviderOptions): Promise<FakeProvider> {
    const server = createServer()
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as AddressInfo
    return new FakeProvider(server, `http://127.0.0.1:${port}`, options)
  }

  /** The next requests to `path` (relative to the base URL, e.g. '/models', query ignored) get these responses, in order. */
  script (path: string, responses: ScriptedResponse[]): void {
    if (!path.startsWith('/')) throw new Error(`script a path relative to the base URL, starting with "/": ${path}`)
    this.scripts.add(path, responses)
  }

  setModels (models: FakeModel[]): void {
    this.models = models
  }

  /** From now on only these tokens are valid, as after a key is rotated or revoked. */
  setTokens (tokens: string[]): void {
    this.tokens = new Set(tokens)
  }

  /** The next `count` answers send their headers and half their body, then nothing more (until close). */
  stallNextAnswers (count = 1): void {
    this.stalls += count
  }

  /** The most requests in flight at once so far, counted from arrival to the end of the response. */
  peakConcurrency (): number {
    return this.peak
  }

  async close (): Promise<void> {
    this.closing.abort()
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    // Keep-alive sockets and delayed requests would hold close() open.
    this.server.closeAllConnections()
    await closed
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    const record: ProviderRequest = {
      method,
      path,
      ...(req.headers.authorization !== undefined && { authorization: req.headers.authorization }),
      status: 0,
      startedAt: Date.now()
    }
    this.requests.push(record)
    this.onRequest?.(path)
    this.inFlight += 1
    this.peak = Math.max(this.peak, this.inFlight)
    res.on('close', () => {
      this.inFlight -= 1
      record.endedAt = Date.now()
    })

    const relative = path.startsWith(`${this.flavour.basePath}/`) ? path.slice(this.flavour.basePath.length) : undefined
    const step = relative === undefined ? undefined : this.scripts.take(relative)
    const delayMs = step?.delayMs ?? this.delayMs
    if (delayMs > 0) {
      try {
        await sleep(delayMs, undefined, { signal: this.closing.signal })
      } catch {
        return // closing: the socket is being destroyed
      }
    }
    const auth = this.authOf(req.headers.authorization)
    const answer = step && !passesThrough(step)
      ? this.scriptedAnswer(step, auth, method, path)
      : this.flavour.answer(method, relative, auth, this.models, path)
    this.send(res, record, answer, stepHeaders(step))
  }

  private authOf (header: string | undefined): Auth {
    const token = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1]
    if (token === undefined) return { kind: 'missing' }
    return { kind: this.tokens.has(token) ? 'valid' : 'invalid', token }
  }

  private scriptedAnswer (step: ScriptedStep, auth: Auth, method: string, path: string): Answer {
    if (step.body !== undefined) return { status: step.status, body: step.body }
    // Only a 4xx/5xx gets here without a body: a 2xx without one passes through.
    return { status: step.status, body: this.flavour.error(step.status, auth, method, path) }
  }

  private send (res: ServerResponse, record: ProviderRequest, answer: Answer, headers: Record<string, string>): void {
    if (res.destroyed) return
    const bytes = Buffer.from(JSON.stringify(answer.body))
    record.status = answer.status
    res.writeHead(answer.status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': String(bytes.length) })
    if (this.stalls > 0) {
      this.stalls -= 1
      res.write(bytes.subarray(0, Math.floor(bytes.length / 2)))
      return
    }
    res.end(bytes)
  }
}
