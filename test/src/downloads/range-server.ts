import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { HubConnection } from '../../../src/downloads/range-request.js'

// A real HTTP server on 127.0.0.1 for the fetcher's steps, each path a way a server can answer.

export interface Seen { path: string, range: string | undefined, authorization: string | undefined }
export type Route = (req: IncomingMessage, res: ServerResponse) => void
export interface LocalServer { base: string, requests: Seen[] }

export async function startServer (t: Test, route: Route): Promise<LocalServer> {
  const requests: Seen[] = []
  const server = createServer((req, res) => {
    requests.push({ path: req.url ?? '', range: req.headers.range, authorization: req.headers.authorization })
    route(req, res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { base: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests }
}

export interface RangeOptions {
  /** Answers every request with the whole file, as a server without Range support does. */
  ignoreRange?: boolean
  /** Answers the range from this many bytes later than asked. */
  shift?: number
  /** Sends this many bytes more than the range, with no Content-Length to give it away. */
  extra?: number
  /** Cuts the connection after this many bytes of the body. */
  breakAfter?: number
  /** Sends this many bytes of the body, then nothing more. */
  stallAfter?: number
  /** Waits this long before answering. */
  delayMs?: number
}

/** Serves `content` as a file server that honours Range does, unless told to misbehave. */
export function sendRange (content: Buffer, req: IncomingMessage, res: ServerResponse, options: RangeOptions = {}): void {
  const answer = (): void => {
    const match = options.ignoreRange === true ? null : /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
    if (match === null) {
      res.writeHead(200, { 'content-length': content.length })
      res.end(content)
      return
    }
    const start = Number(match[1]) + (options.shift ?? 0)
    const end = match[2] === '' ? content.length - 1 : Math.min(Number(match[2]), content.length - 1)
    if (start >= content.length) {
      res.writeHead(416, { 'content-range': `bytes */${content.length}` })
      res.end()
      return
    }
    let body = content.subarray(start, end + 1)
    if (options.extra !== undefined) body = Buffer.concat([body, Buffer.alloc(options.extra)])
    const length = options.extra === undefined ? { 'content-length': body.length } : {}
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${content.length}`, ...length })
    if (options.stallAfter !== undefined) res.write(body.subarray(0, options.stallAfter))
    else if (options.breakAfter !== undefined) res.write(body.subarray(0, options.breakAfter), () => res.destroy())
    else res.end(body)
  }
  if (options.delayMs === undefined) answer()
  else setTimeout(answer, options.delayMs)
}

/** How the steps reach a server that is the Hub: no provider in between, a short stall deadline. */
export function hubAt (endpoint: string, headers: Record<string, string> = {}): HubConnection {
  return { endpoint, hubHeaders: () => headers, throughHub: async (request) => request(), readTimeoutMs: 5000 }
}

export function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'modeldepot-fetcher-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** What `promise` rejects with (it must reject). */
export async function caught (promise: Promise<unknown>): Promise<Error> {
  return promise.then(() => { throw new Error('expected a rejection') }, (err: unknown) => err as Error)
}
