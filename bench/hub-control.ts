import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { Fault } from '../test/fakes/fake-hub.js'
import type { BenchModel } from './bench-models.js'
import type { HubReady, HubReply, HubRequest } from './hub-messages.js'

const HUB_PROCESS = fileURLToPath(new URL('./hub-process.js', import.meta.url))

type Request = HubRequest extends infer R ? R extends HubRequest ? Omit<R, 'id'> : never : never

/** The harness's handle on the fake Hub process. */
export class HubProcess {
  readonly url: string
  readonly #child: ChildProcess
  readonly #pending = new Map<number, { resolve: (value: unknown) => void, reject: (err: Error) => void }>()
  #nextId = 1

  private constructor (child: ChildProcess, url: string) {
    this.#child = child
    this.url = url
    child.on('message', (reply: HubReply) => {
      const pending = this.#pending.get(reply.id)
      this.#pending.delete(reply.id)
      if (reply.ok) pending?.resolve(reply.value)
      else pending?.reject(new Error(`fake Hub: ${reply.error}`))
    })
  }

  static async start (): Promise<HubProcess> {
    const child = fork(HUB_PROCESS, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const [message] = await Promise.race([
      once(child, 'message') as Promise<[HubReady]>,
      once(child, 'exit').then(([code]) => { throw new Error(`the fake Hub process exited (${String(code)})`) })
    ])
    return new HubProcess(child, message.ready)
  }

  get pid (): number | undefined {
    return this.#child.pid
  }

  /** Adds repositories; their LFS sha256 is computed here, about a second per GiB. */
  async addModels (models: BenchModel[]): Promise<void> {
    await this.#ask({ op: 'addModels', models })
  }

  async injectFault (fault: Fault): Promise<void> {
    await this.#ask({ op: 'injectFault', fault })
  }

  /** File bytes sent since the start, over the resolve endpoint and the CDN together. */
  async bytesServed (): Promise<number> {
    return await this.#ask({ op: 'bytesServed' }) as number
  }

  async stop (): Promise<void> {
    if (this.#child.exitCode !== null) return
    const exited = once(this.#child, 'exit')
    this.#child.disconnect()
    await exited
  }

  async #ask (request: Request): Promise<unknown> {
    const id = this.#nextId++
    const answer = new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }))
    this.#child.send({ ...request, id })
    return answer
  }
}
