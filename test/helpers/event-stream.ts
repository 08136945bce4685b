import type { FastifyInstance } from 'fastify'
import { auth } from './app.js'

export interface ServerSentEvent { event: string, data: any }

export interface OpenStream {
  status: number
  headers: Headers
  /** Events so far, in order. */
  events: ServerSentEvent[]
  /** Everything received, comments included. */
  raw: () => string
  /** Resolves when the server ends the stream. */
  ended: Promise<void>
  /** Drops the connection, as a client going away does. */
  close: () => void
}

/** Listens on a real port (event streams need a socket), once per test. */
export async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening')
  return `http://127.0.0.1:${address.port}`
}

/** Opens an event stream as EventSource or `curl -N` would, and parses what arrives. */
export async function openStream (url: string, headers: Record<string, string> = auth()): Promise<OpenStream> {
  const controller = new AbortController()
  const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal })
  const events: ServerSentEvent[] = []
  let text = ''
  let buffer = ''
  const ended = (async () => {
    const decoder = new TextDecoder()
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        const piece = decoder.decode(chunk, { stream: true })
        text += piece
        buffer += piece
        let boundary: number
        while ((boundary = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, boundary)
          buffer = buffer.slice(boundary + 2)
          const lines = block.split('\n').filter((line) => !line.startsWith(':'))
          if (lines.length === 0) continue
          const event = lines.find((line) => line.startsWith('event:'))?.slice(6).trim() ?? 'message'
          const data = lines.filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trimStart()).join('\n')
          events.push({ event, data: data === '' ? undefined : JSON.parse(data) })
        }
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err
    }
  })()
  return { status: response.status, headers: response.headers, events, raw: () => text, ended, close: () => controller.abort() }
}

export async function until (condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
