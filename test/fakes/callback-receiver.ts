import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

// Stands in for n8n's Wait node: records every callback with its headers and raw body, and answers
// with the statuses a test scripts (then 200).

export interface ReceivedCallback {
  path: string
  headers: IncomingMessage['headers']
  body: string
  at: number
}

export type ReceiverAnswer = number | { status: number, location?: string, hang?: boolean, body?: string }

export class CallbackReceiver {
  readonly url: string
  readonly received: ReceivedCallback[] = []
  readonly #server: Server
  readonly #answers: ReceiverAnswer[] = []
  readonly #waiters: Array<() => void> = []

  private constructor (server: Server, url: string) {
    this.#server = server
    this.url = url
    server.on('request', (req: IncomingMessage, res: ServerResponse) => { void this.#handle(req, res) })
  }

  static async start (): Promise<CallbackReceiver> {
    const server = createServer()
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return new CallbackReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  }

  /** The next callbacks get these answers, in order. */
  answer (...answers: ReceiverAnswer[]): void {
    this.#answers.push(...answers)
  }

  /** Resolves once `count` callbacks have arrived. */
  async waitFor (count: number, timeoutMs = 20_000): Promise<ReceivedCallback[]> {
    const deadline = Date.now() + timeoutMs
    while (this.received.length < count) {
      if (Date.now() > deadline) throw new Error(`${count} callbacks expected, ${this.received.length} arrived`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
    return this.received.slice(0, count)
  }

  async close (): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    this.#server.closeAllConnections()
    await closed
  }

  async #handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    this.received.push({ path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString(), at: Date.now() })
    for (const wake of this.#waiters.splice(0)) wake()
    const next = this.#answers.shift() ?? 200
    const answer = typeof next === 'number' ? { status: next } : next
    if (answer.hang === true) return // never answers: the sender's timeout must end it
    res.writeHead(answer.status, {
      ...(answer.location === undefined ? {} : { location: answer.location }),
      ...(answer.body === undefined ? {} : { 'content-type': 'application/json' })
    })
    res.end(answer.body)
  }
}
