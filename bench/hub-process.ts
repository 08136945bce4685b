import { FakeHub } from '../test/fakes/fake-hub.js'
import { repoSpec } from './bench-models.js'
import type { HubReady, HubReply, HubRequest } from './hub-messages.js'

// The fake Hub in a process of its own, so serving bytes never shares a CPU thread with the harness
// or with a load generator. Driven over IPC by HubProcess (hub-control.ts); exits with its parent.

// Pages of 1000 entries, as the real Hub's tree API pages them.
const hub = await FakeHub.start({ pageSize: 1000 })

function answer (request: HubRequest): unknown {
  switch (request.op) {
    case 'addModels':
      for (const model of request.models) hub.addRepo(repoSpec(model))
      return null
    case 'injectFault':
      hub.injectFault(request.fault)
      return null
    case 'bytesServed':
      return hub.bytesServed()
  }
}

process.on('message', (request: HubRequest) => {
  let reply: HubReply
  try {
    reply = { id: request.id, ok: true, value: answer(request) }
  } catch (err) {
    reply = { id: request.id, ok: false, error: String(err) }
  }
  process.send?.(reply)
})
process.on('disconnect', () => { void hub.close().finally(() => process.exit(0)) })
process.send?.({ ready: hub.url } satisfies HubReady)
