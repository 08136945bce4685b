import { createHash, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseRange, streamBody, type Fault } from './fake-hub-body.js'
import { BadListingQuery, listingItem, searchModels } from './fake-hub-listing.js'
import { FAKE_DATE, StoredRepo, type FakeRepoSpec, type FileBytes, type StoredRevision } from './fake-hub-repo.js'
import { passesThrough, rateLimitHeaders, ResponseScripts, stepHeaders, type ScriptedResponse } from './scripted-response.js'

// A fake Hugging Face Hub on a real socket: the model API, the resolve endpoint and an LFS "CDN",
// with the Hub's headers and error codes, and faults a test can inject into downloads.
// @huggingface/hub works against it with `hubUrl: hub.url`; a huggingface_hub-style downloader with HF_ENDPOINT.

export { gitBlobSha1, sha256Hex } from './fake-hub-repo.js'
export type { FakeFile, FakeRevision, FakeRepoSpec, GeneratedFile, TreeEntry } from './fake-hub-repo.js'
export { GeneratedContent } from './generated-content.js'
export type { Fault } from './fake-hub-body.js'
export type { ScriptedResponse } from './scripted-response.js'

export interface RecordedRequest {
  method: string
  /** As received: path and query, still percent-encoded. */
  url: string
  /** `url` without the query. */
  path: string
  range?: string
  authorization?: string
  /** 0 until the status line is written. */
  status: number
  bodyBytes: number
  /** Date.now() when it arrived. */
  at: number
}

export type TokenRole = 'read' | 'write' | 'fineGrained'
export interface FakeHubOptions {
  /**
   * Entries per page of the tree API, small so tests can walk several pages; also the most items a
   * page of the model listing holds whatever its `limit` (1000 on the real Hub).
   */
  pageSize?: number
  /** Tokens whoami-v2 knows besides those in the repos' allowedTokens. */
  tokens?: Record<string, { name: string, role: TokenRole }>
  /** Served over HTTPS with this key and certificate (PEM) instead of plain HTTP; its URL is then https://. */
  tls?: { key: string, cert: string }
  /**
   * The Hub's rate limits per bucket, in fixed windows (the first request opens one): every answer in
   * the bucket carries RateLimit and RateLimit-Policy as the Hub sends them, and a request past the
   * quota gets a 429 with `r=0` and `t` the seconds left, and no Retry-After.
   */
  rateLimits?: Partial<Record<HubBucket, { quota: number, windowS: number }>>
}

export type HubBucket = 'api' | 'resolvers' | 'pages'

/** The Hub's buckets (https://huggingface.co/docs/hub/rate-limits); the CDN is another host with none. */
export function bucketOf (path: string): HubBucket | undefined {
  if (path.startsWith('/cdn/')) return undefined
  if (path.split('/').includes('resolve')) return 'resolvers'
  return path.startsWith('/api/') ? 'api' : 'pages'
}

/** An error as the Hub sends it: X-Error-Code / X-Error-Message headers and a JSON `{"error"}` body. */
class HubError extends Error {
  constructor (readonly status: number, message: string, readonly code?: string, readonly headers: Record<string, string> = {}) {
    super(message)
  }
}

// The fields the Hub accepts in `expand`; any other makes it answer 400.
const EXPANDABLE = new Set(['author', 'baseModels', 'cardData', 'childrenModelCount', 'config', 'createdAt', 'disabled',
  'downloads', 'downloadsAllTime', 'gated', 'gguf', 'gitalyUid', 'inference', 'inferenceProviderMapping', 'lastModified',
  'library_name', 'likes', 'mask_token', 'model-index', 'pipeline_tag', 'private', 'resourceGroup', 'safetensors', 'sha',
  'siblings', 'spaces', 'tags', 'transformersInfo', 'trendingScore', 'usedStorage', 'widgetData', 'xetEnabled'])

const INVALID_TOKEN = 'Invalid credentials in Authorization header'

export class FakeHub {
  readonly url: string
  readonly requests: RecordedRequest[] = []
  private readonly server: Server
  private readonly pageSize: number
  private readonly tokens: Map<string, { name: string, role: TokenRole }>
  private readonly repos = new Map<string, StoredRepo>()
  /** LFS bytes by sha256, what the CDN serves. */
  private readonly blobs = new Map<string, FileBytes>()
  private readonly faults: Array<{ fault: Fault, left: number }> = []
  private readonly apiFaults: Array<{ pathPrefix: string, fault: Fault, left: number }> = []
  /** The fault an API answer's JSON body is sent with, set when the request is routed. */
  private readonly bodyFaults = new WeakMap<ServerResponse, Fault>()
  private readonly served = new Map<string, number>()
  private readonly rateLimits: NonNullable<FakeHubOptions['rateLimits']>
  private readonly windows = new Map<HubBucket, { start: number, count: number }>()
  /** The rate-limit headers of each answer, and whether its request was past the quota. */
  private readonly quotaOf = new WeakMap<ServerResponse, { headers: Record<string, string>, exceeded: boolean }>()
  // A prefix matches whole path segments: '/api/models' covers '/api/models/acme/tiny', not '/api/modelsx'.
  private readonly scripts = new ResponseScripts((prefix, path) => path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`))
  /** Ends scripted delays on close(), so no timer outlives the fake. */
  private readonly closing = new AbortController()

  private constructor (server: Server, url: string, options: FakeHubOptions) {
    this.server = server
    this.url = url
    this.pageSize = options.pageSize ?? 50
    this.tokens = new Map(Object.entries(options.tokens ?? {}))
    this.rateLimits = options.rateLimits ?? {}
    server.on('request', (req: IncomingMessage, res: ServerResponse) => { void this.handle(req, res) })
  }

  static async start (options: FakeHubOptions = {}): Promise<FakeHub> {
    // An https.Server serves the same 'request' events, and closes the same way.
    const server = options.tls === undefined ? createServer() : createHttpsServer(options.tls) as unknown as Server
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as AddressInfo
    return new FakeHub(server, `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`, options)
  }

  /** A file whose content is a GeneratedContent is served range by range, never held whole in memory. */
  addRepo (spec: FakeRepoSpec): void {
    const repo = new StoredRepo(spec)
    this.repos.set(spec.id, repo)
    for (const name of Object.keys(spec.revisions)) {
      for (const file of repo.revision(name)?.files.values() ?? []) {
        if (file.lfs) this.blobs.set(file.lfs.sha256, file.content)
      }
    }
  }

  /** A token issued while the Hub runs: accepted from now on (whoami, private and gated repos aside). */
  addToken (token: string, who: { name: string, role: TokenRole } = { name: 'rotated', role: 'read' }): void {
    this.tokens.set(token, who)
  }

  /** A token revoked on the Hub: from now on it is refused (401) like any unknown token. */
  revokeToken (token: string): void {
    this.tokens.delete(token)
  }

  injectFault (fault: Fault): void {
    this.faults.push({ fault, left: fault.times ?? 1 })
  }

  /** Drops every fault and scripted answer not yet played, as a network that recovers. */
  clearFaults (): void {
    this.faults.length = 0
    this.apiFaults.length = 0
    this.scripts.clear()
  }

  /**
   * The JSON bodies of the next API answers whose path starts with `pathPrefix` are sent with this
   * fault ('reset', 'stall', 'corrupt' or 'slow'), as a flaky network would deliver them.
   */
  injectApiFault (pathPrefix: string, fault: Fault): void {
    if (!pathPrefix.startsWith('/api/')) throw new Error(`injectApiFault takes an API path such as '/api/models': ${pathPrefix}`)
    if (!['reset', 'stall', 'corrupt', 'slow'].includes(fault.kind)) throw new Error(`an API body cannot have a '${fault.kind}' fault; script a status with scriptApi`)
    this.apiFaults.push({ pathPrefix, fault, left: fault.times ?? 1 })
  }

  /**
   * The next API requests whose path (still percent-encoded, without the query) starts with
   * `pathPrefix`, e.g. '/api/whoami-v2' or '/api/models', get these responses in order; then normal
   * behaviour resumes. A 4xx/5xx comes with the Hub's error headers and `{"error"}` body.
   */
  scriptApi (pathPrefix: string, responses: ScriptedResponse[]): void {
    if (!pathPrefix.startsWith('/api/')) throw new Error(`scriptApi takes an API path such as '/api/models': ${pathPrefix}`)
    this.scripts.add(pathPrefix, responses)
  }

  /** File bytes sent by the resolve endpoint and the CDN, for one repo file path or all. */
  bytesServed (filePath?: string): number {
    if (filePath !== undefined) return this.served.get(filePath) ?? 0
    return [...this.served.values()].reduce((sum, n) => sum + n, 0)
  }

  async close (): Promise<void> {
    this.closing.abort()
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    // Stalled and keep-alive connections would hold close() open forever.
    this.server.closeAllConnections()
    await closed
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/'
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      url,
      path: url.split('?')[0] ?? url,
      ...(req.headers.range !== undefined && { range: req.headers.range }),
      ...(req.headers.authorization !== undefined && { authorization: req.headers.authorization }),
      status: 0,
      bodyBytes: 0,
      at: Date.now()
    }
    this.requests.push(record)
    this.countQuota(res, record)
    res.setHeader('X-Request-Id', `Root=1-${randomUUID()}`)
    try {
      await this.route(req, res, record)
    } catch (err) {
      const error = err instanceof HubError ? err : new HubError(500, String(err))
      if (res.headersSent) {
        res.destroy()
        return
      }
      // Header values must be printable ASCII; a revision or path from the URL may not be.
      const message = error.message.replace(/[^\x20-\x7e]/g, '?')
      const headers = { ...error.headers, 'X-Error-Message': message, ...(error.code && { 'X-Error-Code': error.code }) }
      this.sendJson(req, res, record, error.status, { error: error.message }, headers)
    }
  }

  private async route (req: IncomingMessage, res: ServerResponse, record: RecordedRequest): Promise<void> {
    const url = new URL(req.url ?? '/', this.url)
    const segments = url.pathname.split('/').slice(1).map(decodeSegment)
    const method = req.method ?? 'GET'
    const reading = method === 'GET' || method === 'HEAD'

    const step = this.scripts.take(url.pathname)
    const bodyFault = this.takeApiFault(url.pathname)
    if (bodyFault !== undefined) this.bodyFaults.set(res, bodyFault)
    if (step?.delayMs !== undefined) {
      try {
        await sleep(step.delayMs, undefined, { signal: this.closing.signal })
      } catch {
        res.destroy() // closing
        return
      }
    }
    if (step && !passesThrough(step)) {
      if (step.body !== undefined) return this.sendJson(req, res, record, step.status, step.body, stepHeaders(step))
      throw new HubError(step.status, STATUS_CODES[step.status] ?? 'Error', step.errorCode, stepHeaders(step))
    }
    if (this.quotaOf.get(res)?.exceeded === true) throw new HubError(429, 'You have exceeded our rate limit for this bucket. Retry later.')

    // The CDN serves signed URLs and ignores credentials, like cdn-lfs.hf.co.
    if (segments[0] === 'cdn' && segments.length === 2 && reading) {
      const sha256 = segments[1] ?? ''
      const content = this.blobs.get(sha256)
      if (!content) throw new HubError(404, 'Not Found')
      return await this.serveBytes(req, res, record, content, `"${sha256}"`, url.searchParams.get('path') ?? sha256, {})
    }

    const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
    // The Hub refuses an unknown or expired token even on public repos, rather than ignoring it.
    if (req.headers.authorization !== undefined && (token === undefined || !this.knows(token))) {
      throw new HubError(401, INVALID_TOKEN)
    }
    if (url.pathname === '/api/whoami-v2' && method === 'GET') return this.whoami(req, res, record, token)
    if (url.pathname === '/api/models' && method === 'GET') return this.listModels(req, res, record, url)

    if (segments[0] === 'api' && segments[1] === 'models') {
      const located = this.locateRepo(segments.slice(2), (s) => s === undefined || ['revision', 'tree', 'paths-info'].includes(s))
      const [action, ...more] = located?.rest ?? []
      if (located && action === undefined && method === 'GET') {
        return this.modelInfo(req, res, record, this.access(located.repoId, token, false), 'HEAD', url.searchParams)
      }
      // A revision here is the last thing in the path, so an unencoded "refs/pr/1" is read whole.
      if (located && action === 'revision' && more.length > 0 && method === 'GET') {
        return this.modelInfo(req, res, record, this.access(located.repoId, token, false), more.join('/'), url.searchParams)
      }
      // In a tree URL only the first segment is the revision: a revision with "/" must be percent-encoded.
      if (located && action === 'tree' && more.length > 0 && method === 'GET') {
        const [revision = '', ...dir] = more
        return this.tree(req, res, record, this.access(located.repoId, token, false), revision, dir.join('/'), url)
      }
      if (located && action === 'paths-info' && more.length > 0 && method === 'POST') {
        return await this.pathsInfo(req, res, record, this.access(located.repoId, token, false), more.join('/'))
      }
      throw new HubError(404, 'Not Found')
    }

    const located = this.locateRepo(segments, (s) => s === 'resolve' || s === 'raw')
    const [kind, revisionName, ...file] = located?.rest ?? []
    if (located && revisionName !== undefined && file.length > 0 && reading) {
      const repo = this.access(located.repoId, token, true)
      return await this.resolve(req, res, record, repo, this.revisionOf(repo, revisionName), file.join('/'), kind === 'raw')
    }
    throw new HubError(404, 'Not Found')
  }

  private knows (token: string): boolean {
    return this.tokens.has(token) || [...this.repos.values()].some((repo) => repo.allows(token))
  }

  /**
   * Splits "org/name/<keyword>/…" or "name/<keyword>/…" into the repo id and the rest, preferring a
   * repo that exists, so both one- and two-part ids work.
   */
  private locateRepo (segments: string[], isKeyword: (s: string | undefined) => boolean): { repoId: string, rest: string[] } | undefined {
    const candidates = [2, 1]
      .filter((n) => segments.length >= n && segments.slice(0, n).every((s) => s !== '') && isKeyword(segments[n]))
      .map((n) => ({ repoId: segments.slice(0, n).join('/'), rest: segments.slice(n) }))
    return candidates.find((c) => this.repos.has(c.repoId)) ?? candidates[0]
  }

  /** The Hub's access rules; `content` is true for file bytes, the only thing gating protects. */
  private access (repoId: string, token: string | undefined, content: boolean): StoredRepo {
    const repo = this.repos.get(repoId)
    if (!repo || (repo.spec.private === true && !repo.allows(token))) {
      // A private repo looks exactly like a missing one; 401 rather than 404 when no token was sent.
      throw new HubError(token ? 404 : 401, 'Repository not found', 'RepoNotFound')
    }
    if (content && repo.spec.gated && !repo.allows(token)) {
      throw token
        ? new HubError(403, `Access to model ${repo.id} is restricted and you are not in the authorized list. Visit ${this.url}/${repo.id} to ask for access.`, 'GatedRepo')
        : new HubError(401, `Access to model ${repo.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`, 'GatedRepo')
    }
    return repo
  }

  private revisionOf (repo: StoredRepo, name: string): StoredRevision {
    const revision = repo.revision(name)
    if (!revision) throw new HubError(404, `Invalid rev id: ${name}`, 'RevisionNotFound')
    return revision
  }

  private modelInfo (req: IncomingMessage, res: ServerResponse, record: RecordedRequest, repo: StoredRepo, revisionName: string, query: URLSearchParams): void {
    const revision = this.revisionOf(repo, revisionName)
    const full = repo.modelInfo(revision, isTrue(query.get('blobs')))
    const expand = expandedFields(query)
    this.sendJson(req, res, record, 200, expand.length === 0 ? full : pickFields(full, expand))
  }

  /** Like the Hub: items of the default listing, or the ids and `expand`ed fields; paged like the tree API. */
  private listModels (req: IncomingMessage, res: ServerResponse, record: RecordedRequest, url: URL): void {
    const expand = expandedFields(url.searchParams)
    const limit = url.searchParams.get('limit')
    if (limit !== null && !/^[1-9][0-9]*$/.test(limit)) throw new HubError(400, '"limit" must be a positive integer')
    let infos: Array<Record<string, unknown>>
    try {
      infos = searchModels(this.repos.values(), url.searchParams)
    } catch (err) {
      throw err instanceof BadListingQuery ? new HubError(400, err.message) : err
    }
    const items = infos.map((info) => (expand.length === 0 ? listingItem(info) : pickFields(info, expand)))
    const { page, headers } = this.paginate(req, url, items, Math.min(Number(limit ?? this.pageSize), this.pageSize))
    this.sendJson(req, res, record, 200, page, headers)
  }

  private tree (req: IncomingMessage, res: ServerResponse, record: RecordedRequest, repo: StoredRepo, revisionName: string, dir: string, url: URL): void {
    const revision = this.revisionOf(repo, revisionName)
    const entries = repo.list(revision, dir, isTrue(url.searchParams.get('recursive')), isTrue(url.searchParams.get('expand')))
    if (!entries) throw new HubError(404, `${dir} does not exist on "${revisionName}"`, 'EntryNotFound')
    const { page, headers } = this.paginate(req, url, entries, this.pageSize)
    this.sendJson(req, res, record, 200, page, headers)
  }

  private paginate<T> (req: IncomingMessage, url: URL, items: T[], pageSize: number): { page: T[], headers: Record<string, string> } {
    const offset = decodeCursor(url.searchParams.get('cursor'))
    const headers: Record<string, string> = {}
    if (offset + pageSize < items.length) {
      // Like the Hub: the next page is an absolute URL with an opaque cursor, in a Link header.
      const next = new URL(req.url ?? '/', this.url)
      next.searchParams.set('cursor', Buffer.from(JSON.stringify({ offset: offset + pageSize })).toString('base64url'))
      headers.Link = `<${next.href}>; rel="next"`
    }
    return { page: items.slice(offset, offset + pageSize), headers }
  }

  /** @huggingface/hub posts JSON `{paths, expand}`; huggingface_hub posts a form with repeated `paths`. */
  private async pathsInfo (req: IncomingMessage, res: ServerResponse, record: RecordedRequest, repo: StoredRepo, revisionName: string): Promise<void> {
    const revision = this.revisionOf(repo, revisionName)
    const text = await readBody(req)
    let paths: unknown
    let expand: boolean
    if ((req.headers['content-type'] ?? '').startsWith('application/json')) {
      const json = parseJson(text)
      paths = json.paths
      expand = json.expand === true
    } else {
      const form = new URLSearchParams(text)
      paths = form.getAll('paths')
      expand = isTrue(form.get('expand'))
    }
    if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string')) throw new HubError(400, '"paths" must be an array of strings')
    // Paths that do not exist are left out, not reported as errors.
    const entries = (paths as string[]).map((path) => repo.entry(revision, path, expand)).filter((e) => e !== undefined)
    this.sendJson(req, res, record, 200, entries)
  }

  private async resolve (
    req: IncomingMessage,
    res: ServerResponse,
    record: RecordedRequest,
    repo: StoredRepo,
    revision: StoredRevision,
    path: string,
    raw: boolean
  ): Promise<void> {
    const file = revision.files.get(path)
    const commit = { 'X-Repo-Commit': revision.commit }
    // The commit comes with a 404 too: huggingface_hub caches "no such file at this commit" from it.
    if (!file) throw new HubError(404, 'Entry not found', 'EntryNotFound', commit)
    if (file.lfs && !raw) {
      // Absolute Location to another "host"; X-Linked-* describe the target, ETag the pointer file.
      const location = `${this.url}/cdn/${file.lfs.sha256}?path=${encodeURIComponent(file.path)}`
      const body = Buffer.from(`Found. Redirecting to ${location}`)
      this.writeHead(res, record, 302, {
        ...commit,
        Location: location,
        'X-Linked-Etag': `"${file.lfs.sha256}"`,
        'X-Linked-Size': String(file.content.length),
        ETag: `"${file.oid}"`,
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': String(body.length)
      })
      if (req.method !== 'HEAD') record.bodyBytes = body.length
      res.end(req.method === 'HEAD' ? undefined : body)
      return
    }
    // raw/ of an LFS file is the pointer, as git stores it.
    await this.serveBytes(req, res, record, file.lfs ? file.lfs.pointer : file.content, `"${file.oid}"`, path, commit)
  }

  /** A file body with range support; the one place faults are played. */
  private async serveBytes (
    req: IncomingMessage,
    res: ServerResponse,
    record: RecordedRequest,
    content: FileBytes,
    etag: string,
    filePath: string,
    headers: Record<string, string>
  ): Promise<void> {
    const fault = req.method === 'GET' ? this.takeFault(filePath) : undefined
    const range = fault?.kind === 'ignore-range' ? undefined : parseRange(req.headers.range, content.length)
    if (range === 'unsatisfiable') throw new HubError(416, 'Requested Range Not Satisfiable', undefined, { 'Content-Range': `bytes */${content.length}` })
    if (fault?.kind === 'redirect') {
      this.writeHead(res, record, 302, { Location: fault.location ?? '', 'Content-Length': '0' })
      res.end()
      return
    }
    if (fault?.kind === 'status') {
      const faultHeaders: Record<string, string> = { 'Content-Length': '0' }
      if (fault.retryAfter !== undefined) faultHeaders['Retry-After'] = String(fault.retryAfter)
      this.writeHead(res, record, fault.status ?? 500, faultHeaders)
      res.end()
      return
    }
    const bytes = range ?? { start: 0, end: content.length - 1 }
    this.writeHead(res, record, range ? 206 : 200, {
      ...headers,
      ETag: etag,
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(bytes.end + 1 - bytes.start),
      ...(range && { 'Content-Range': `bytes ${range.start}-${range.end}/${content.length}` })
    })
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    await streamBody(res, content, bytes, fault, (count) => {
      record.bodyBytes += count
      this.served.set(filePath, (this.served.get(filePath) ?? 0) + count)
    })
  }

  private takeApiFault (path: string): Fault | undefined {
    const index = this.apiFaults.findIndex((entry) => this.scripts.matches(entry.pathPrefix, path))
    const entry = this.apiFaults[index]
    if (!entry) return undefined
    entry.left -= 1
    if (entry.left <= 0) this.apiFaults.splice(index, 1)
    return entry.fault
  }

  private takeFault (filePath: string): Fault | undefined {
    const index = this.faults.findIndex(({ fault }) => fault.path === undefined || fault.path === filePath)
    const entry = this.faults[index]
    if (!entry) return undefined
    entry.left -= 1
    if (entry.left <= 0) this.faults.splice(index, 1)
    return entry.fault
  }

  private whoami (req: IncomingMessage, res: ServerResponse, record: RecordedRequest, token: string | undefined): void {
    if (token === undefined) throw new HubError(401, 'Invalid username or password.')
    const { name, role } = this.tokens.get(token) ?? { name: 'fake-user', role: 'read' }
    this.sendJson(req, res, record, 200, {
      type: 'user',
      id: createHash('sha1').update(name).digest('hex').slice(0, 24),
      name,
      fullname: name,
      email: `${name}@example.com`,
      emailVerified: true,
      isPro: false,
      canPay: false,
      avatarUrl: '',
      periodEnd: null,
      billingMode: 'postpaid',
      orgs: [],
      auth: { type: 'access_token', accessToken: { displayName: name, role, createdAt: FAKE_DATE } }
    })
  }

  private sendJson (
    req: IncomingMessage,
    res: ServerResponse,
    record: RecordedRequest,
    status: number,
    body: unknown,
    headers: Record<string, string> = {}
  ): void {
    const bytes = Buffer.from(JSON.stringify(body))
    this.writeHead(res, record, status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(bytes.length) })
    const fault = this.bodyFaults.get(res)
    if (fault !== undefined && req.method !== 'HEAD') {
      if (fault.atText !== undefined && !bytes.includes(fault.atText)) throw new Error(`the answer has no ${fault.atText} to place the fault at`)
      const placed = fault.atText === undefined ? fault : { ...fault, afterBytes: bytes.indexOf(fault.atText) }
      void streamBody(res, bytes, { start: 0, end: bytes.length - 1 }, placed, (count) => { record.bodyBytes += count })
      return
    }
    if (req.method !== 'HEAD') record.bodyBytes = bytes.length
    res.end(req.method === 'HEAD' ? undefined : bytes)
  }

  private writeHead (res: ServerResponse, record: RecordedRequest, status: number, headers: Record<string, string>): void {
    record.status = status
    // A scripted answer's own RateLimit headers win over the counted ones.
    res.writeHead(status, { ...this.quotaOf.get(res)?.headers, ...headers })
  }

  /** Counts the request in its bucket's window, if that bucket is limited. */
  private countQuota (res: ServerResponse, record: RecordedRequest): void {
    const bucket = bucketOf(record.path)
    const limit = bucket === undefined ? undefined : this.rateLimits[bucket]
    if (bucket === undefined || limit === undefined) return
    const now = Date.now()
    let window = this.windows.get(bucket)
    if (window === undefined || now >= window.start + limit.windowS * 1000) {
      window = { start: now, count: 0 }
      this.windows.set(bucket, window)
    }
    window.count++
    const resetS = Math.max(1, Math.ceil((window.start + limit.windowS * 1000 - now) / 1000))
    this.quotaOf.set(res, {
      headers: rateLimitHeaders(bucket, Math.max(limit.quota - window.count, 0), resetS, limit.quota, limit.windowS),
      exceeded: window.count > limit.quota
    })
  }
}

/** Both spellings occur: @huggingface/hub sends expand=…, its repoExists and browsers send expand[]=…. */
function expandedFields (query: URLSearchParams): string[] {
  const expand = [...query.getAll('expand'), ...query.getAll('expand[]')]
  const unknown = expand.find((key) => !EXPANDABLE.has(key))
  if (unknown !== undefined) throw new HubError(400, `"expand" must be one of [${[...EXPANDABLE].join(', ')}]`)
  return expand
}

/** Asked for specific fields, the Hub answers the ids and those fields only. */
function pickFields (full: Record<string, unknown>, expand: string[]): Record<string, unknown> {
  return { _id: full._id, id: full.id, ...Object.fromEntries(expand.map((key) => [key, full[key]])) }
}

/** huggingface_hub sends Python booleans as "True"/"False". */
function isTrue (value: string | null): boolean {
  return value !== null && ['true', '1'].includes(value.toLowerCase())
}

function decodeSegment (segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new HubError(400, `Malformed URL segment: ${segment}`)
  }
}

function decodeCursor (cursor: string | null): number {
  if (cursor === null) return 0
  const offset: unknown = parseJson(Buffer.from(cursor, 'base64url').toString()).offset
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) throw new HubError(400, 'Invalid cursor')
  return offset
}

function parseJson (text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text)
    if (typeof value === 'object' && value !== null) return value as Record<string, unknown>
  } catch {}
  throw new HubError(400, 'Invalid JSON body')
}

async function readBody (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
