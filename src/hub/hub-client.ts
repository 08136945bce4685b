import { failureCode, isOwnError } from '../error-code.js'
import {
  MdFileNotFoundError, MdHfTokenInvalidError, MdHubError, MdHubUnreachableError, MdModelGatedError, MdModelNotFoundError, MdRevisionNotFoundError
} from '../errors.js'
import { describeNetworkFailure } from '../outbound/network-failure.js'
import type { SendRequest } from '../outbound/outbound-dispatcher.js'
import { parseRateLimit } from '../providers/hub-rate-limit.js'
import { answerOfHeaders, type Provider } from '../providers/provider.js'

export interface HubFile {
  path: string
  size: number
  /** The blob name in the cache: the sha256 of an LFS file, the git blob sha1 of any other. */
  etag: string
  lfs: boolean
}

export interface RepoSnapshot {
  modelId: string
  revision: string
  commit: string
  gated: boolean
  files: HubFile[]
}

export interface HubClientOptions {
  /** The huggingface provider: its address, its current token, and the limiter every call goes through. */
  provider: Pick<Provider, 'baseUrl' | 'token' | 'fetch' | 'call'>
  /** What the download engine's file requests go through (the app's way out, its proxy). */
  request?: SendRequest
}

/** An undici answer, as the download engine's file requests get them. */
export interface HubAnswer { statusCode: number, headers: Record<string, string | string[] | undefined> }

type HubLibrary = typeof import('@huggingface/hub')
let hubLibrary: Promise<HubLibrary> | undefined

// Loaded when the first snapshot is resolved, not at start: a server that has not been asked for a
// download or a plan does not hold it (with ioredis, 8 MB of its idle RSS). A failed load is not kept, so the
// next call tries again; the request that met it is answered 500 MD_INTERNAL_ERROR and the cause logged.
async function loadHubLibrary (): Promise<HubLibrary> {
  hubLibrary ??= import('@huggingface/hub').catch((err: unknown) => {
    hubLibrary = undefined
    throw new Error(`@huggingface/hub could not be loaded (${(err as Error).message}): reinstall modeldepot's dependencies`, { cause: err })
  })
  return hubLibrary
}

/**
 * Metadata from the Hub through @huggingface/hub, with its errors turned into ours. The Hub says what
 * went wrong in `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo), which
 * @huggingface/hub's own error drops, so the fetch it uses reads it first.
 */
export class HubClient {
  readonly #provider: HubClientOptions['provider']
  readonly #fetch: typeof fetch
  readonly request: SendRequest | undefined

  constructor ({ provider, request }: HubClientOptions) {
    this.#provider = provider
    this.request = request
    this.#fetch = async (input, init) => {
      let response: Response
      try {
        // The token goes in here rather than through @huggingface/hub, which refuses tokens not
        // shaped like hf_… (mirrors and test Hubs issue others).
        response = await provider.fetch(input, { ...init, headers: { ...init?.headers as Record<string, string>, ...this.authHeaders } })
      } catch (err) {
        // A provider cooling down (or another answer of ours) goes to the client as it is.
        if ((err as Error).name === 'AbortError' || isOwnError(err)) throw err
        throw new MdHubUnreachableError(`The Hub at ${this.endpoint} could not be reached (${causeOf(err)})`)
      }
      // A redirect (the HEAD of an LFS file answers 302 to its CDN) is not an error.
      if (response.status >= 400) throw await hubError(response, this.endpoint)
      return response
    }
  }

  get endpoint (): string {
    return this.#provider.baseUrl
  }

  /** Read on every call, so a rotated token is used from the next call on. */
  get authHeaders (): Record<string, string> {
    const token = this.#provider.token
    return token === undefined ? {} : { authorization: `Bearer ${token}` }
  }

  /** `_get_metadata_or_catch_error` for a whole snapshot: the commit a revision points at, and its files. */
  async resolveSnapshot (modelId: string, revision: string): Promise<RepoSnapshot> {
    try {
      return await this.#resolveSnapshot(modelId, revision)
    } catch (err) {
      // Bytes that arrived whole but garbled (a flipped bit, a proxy's HTML page) do not parse.
      if (err instanceof SyntaxError) throw new MdHubError(`The Hub at ${this.endpoint} answered with JSON that does not parse (${err.message.slice(0, 200)})`)
      throw err
    }
  }

  async #resolveSnapshot (modelId: string, revision: string): Promise<RepoSnapshot> {
    const { listFiles, modelInfo } = await loadHubLibrary()
    const credentials = { hubUrl: this.endpoint, fetch: this.#fetch }
    const info = await modelInfo({ name: modelId, revision, additionalFields: ['sha'], ...credentials })
    const commit = info.sha
    if (typeof commit !== 'string' || !/^[0-9a-f]{40}$/.test(commit)) {
      throw new MdHubError(`The Hub at ${this.endpoint} answered without a commit for ${modelId}@${revision}`)
    }
    const files: HubFile[] = []
    for await (const entry of listFiles({ repo: { type: 'model', name: modelId }, revision: commit, recursive: true, ...credentials })) {
      if (entry.type !== 'file') continue
      const etag = entry.lfs?.oid ?? entry.oid
      if (etag === undefined) throw new MdHubError(`The Hub at ${this.endpoint} listed ${entry.path} without an object id`)
      files.push({ path: entry.path, size: entry.size, etag, lfs: entry.lfs !== undefined })
    }
    return { modelId, revision, commit, gated: info.gated !== false && info.gated !== undefined, files }
  }

  /**
   * Model info and listings of a gated model are public; only the files are not. So before a
   * download of one starts, a HEAD of one file says whether this token may read it.
   */
  async checkFileAccess (modelId: string, commit: string, path: string): Promise<void> {
    await this.#fetch(this.fileUrl(modelId, commit, path), { method: 'HEAD', redirect: 'manual' })
  }

  /**
   * A request of the download engine to the Hub itself (its CDN is another upstream): through the
   * provider's gate and limiter, its answer or failure counted in the provider's health.
   */
  async send<T extends HubAnswer> (request: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    // Its file requests are /resolve/ URLs: the Hub's resolvers bucket.
    return this.#provider.call(request, ({ statusCode, headers }) => answerOfHeaders(statusCode, (name) => {
      const value = headers[name]
      return typeof value === 'string' ? value : undefined
    }), { bucket: 'resolvers', signal })
  }

  fileUrl (modelId: string, commit: string, path: string): string {
    return `${this.endpoint}/${modelId}/resolve/${commit}/${path.split('/').map(encodeURIComponent).join('/')}`
  }
}

function causeOf (err: unknown): string {
  if ((err as Error).name === 'TimeoutError') return 'no complete answer within PROVIDER_TIMEOUT_MS'
  return describeNetworkFailure(err) ?? failureCode(err) ?? (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message
}

/** `hf_raise_for_status`: the Hub's error code decides which of our errors it is. */
export async function hubError (response: Response, endpoint: string): Promise<Error> {
  const code = response.headers.get('x-error-code')
  const hubMessage = response.headers.get('x-error-message') ?? await response.text().then((text) => {
    try { return (JSON.parse(text) as { error?: string }).error ?? text } catch { return text }
  }).catch(() => '')
  const said = hubMessage === '' ? '' : ` (the Hub said: ${hubMessage.slice(0, 300)})`
  // The Hub's answer to a token it does not know, on any repo: no error code, just this message.
  if (response.status === 401 && code === null && /invalid credentials/i.test(hubMessage)) {
    return new MdHfTokenInvalidError(`The Hub at ${endpoint} rejected HF_TOKEN${said}`)
  }
  if (code === 'GatedRepo') return new MdModelGatedError(`Access to this model is restricted${said}`)
  if (code === 'RevisionNotFound') return new MdRevisionNotFoundError(`No such revision on the Hub${said}`)
  if (code === 'EntryNotFound') return new MdFileNotFoundError(`A file of this model is missing on the Hub${said}`)
  // The Hub answers 401 RepoNotFound for private repos without access, never revealing they exist.
  if (code === 'RepoNotFound' || response.status === 404 || response.status === 401) {
    return new MdModelNotFoundError(`No such model on the Hub, or it is private and HF_TOKEN cannot read it${said}`)
  }
  if (response.status === 403) return new MdModelGatedError(`The Hub refused access${said}`)
  // A 429 of the Hub says when to come back in its RateLimit `t`, often without a Retry-After.
  const rateLimit = parseRateLimit(response.headers.get('ratelimit') ?? undefined, undefined)
  const retryAfter = response.headers.get('retry-after') ?? (response.status === 429 && rateLimit?.remaining === 0 ? String(rateLimit.resetInS) : null)
  return new MdHubError(`The Hub at ${endpoint} answered ${response.status}${said}`, retryAfter)
}
