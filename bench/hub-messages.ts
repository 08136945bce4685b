import type { Fault } from '../test/fakes/fake-hub.js'
import type { BenchModel } from './bench-models.js'

// What the harness and the Hub process say to each other over the IPC channel.

export type HubRequest =
  | { id: number, op: 'addModels', models: BenchModel[] }
  | { id: number, op: 'injectFault', fault: Fault }
  | { id: number, op: 'bytesServed' }

export type HubReply = { id: number, ok: true, value: unknown } | { id: number, ok: false, error: string }

/** The first message of the Hub process, once it listens. */
export interface HubReady { ready: string }
