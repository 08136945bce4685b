import sseModule, { type SSEPluginOptions } from '@fastify/sse'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../src/config.js'
import { StreamSlots } from '../src/downloads/stream-slots.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Server-Sent Event streams: how many are open, at most how many, and the signal that ends them all. */
    eventStreams: StreamSlots
  }
}

export interface EventStreamsOptions {
  config: Pick<Config, 'eventStreams'>
}

// Its CommonJS module is the fastify-plugin-wrapped function (what makes `sse` work on every route);
// its types describe the ES default, the unwrapped one.
const sse = sseModule as unknown as FastifyPluginAsync<SSEPluginOptions>

async function eventStreamsPlugin (app: FastifyInstance, { config }: EventStreamsOptions): Promise<void> {
  // Heartbeat comments keep proxies from closing a stream that has nothing to say for a while.
  await app.register(sse, { heartbeatInterval: config.eventStreams.heartbeatMs })
  const slots = new StreamSlots(config.eventStreams.maxOpen)
  app.decorate('eventStreams', slots)
  // Before the server waits for open requests: a stream never ends by itself, so end them all.
  app.addHook('preClose', async () => slots.close())
}

export default fp(eventStreamsPlugin, { name: 'event-streams' })
