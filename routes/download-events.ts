import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { Type } from '../src/type-builder.js'
import { errorRef } from '../plugins/errors.js'
import { MdTooManyStreamsError } from '../src/errors.js'
import { jobEvents } from '../src/downloads/job-events.js'

// At most four progress events per second per job: enough for a live bar, cheap for the server.
const MIN_EVENT_INTERVAL_MS = 250

const EventStream = (description: string): Record<string, unknown> => ({
  description,
  content: { 'text/event-stream': { schema: { type: 'string', description: 'Server-Sent Events; each `data:` line is a DownloadJob as JSON' } } }
})

const STREAM_DESCRIPTION = [
  '`text/event-stream`: a `progress` event with the job as JSON (as `GET /api/downloads/{job_id}` answers it) at once and whenever it changes, at most four a second per job;',
  'then an event named after its final status (`complete`, `error` or `cancelled`). Comment lines (`: heartbeat`) keep idle proxies from closing the stream.',
  'One connection counts once against the rate limit; at most EVENT_STREAMS_MAX streams are open at once (503 `MD_TOO_MANY_STREAMS` past that). Closing the connection releases everything.'
].join(' ')

/** Live progress over Server-Sent Events, for dashboards and anything that would rather not poll. */
const downloadEventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/downloads/events', {
    config: { scope: 'read' },
    sse: 'only',
    schema: {
      operationId: 'streamAllDownloadEvents',
      summary: 'Live progress of every download',
      description: [
        STREAM_DESCRIPTION,
        'This stream starts with the jobs not yet ended and stays open until the client closes it.',
        'Try `curl -N -H "Authorization: Bearer $KEY" $MD/api/downloads/events`.'
      ].join(' '),
      tags: ['models'],
      response: { 200: EventStream('Events of every job, until the client closes the stream'), 503: errorRef('Too many open event streams (Retry-After)') }
    }
  }, async (_request, reply) => streamEvents(app, reply, undefined))

  app.get('/downloads/:job_id/events', {
    config: { scope: 'read' },
    sse: 'only',
    schema: {
      operationId: 'streamDownloadEvents',
      summary: 'Live progress of one download',
      description: [
        STREAM_DESCRIPTION,
        'The stream ends after the final event (at once for a job that has ended).',
        'Try `curl -N -H "Authorization: Bearer $KEY" $MD/api/downloads/$JOB/events`.'
      ].join(' '),
      tags: ['models'],
      params: Type.Object({ job_id: Type.String() }),
      response: { 200: EventStream('Events of the job, until it ends'), 404: errorRef('No such job'), 503: errorRef('Too many open event streams (Retry-After)') }
    }
  }, async (request, reply) => {
    const { job_id: jobId } = request.params
    await app.downloads.get(jobId) // 404 before the stream starts
    await streamEvents(app, reply, jobId)
  })
}

export default downloadEventRoutes

async function streamEvents (app: FastifyInstance, reply: FastifyReply, jobId: string | undefined): Promise<void> {
  const release = app.eventStreams.take()
  if (release === undefined) {
    throw new MdTooManyStreamsError(app.eventStreams.max)
  }
  // Ends when the client goes away or the server closes. (Not AbortSignal.any: tied to the
  // server-long `closing` signal, each stream's combined signal would be kept until shutdown.)
  const gone = new AbortController()
  const end = (): void => gone.abort()
  app.eventStreams.closing.addEventListener('abort', end, { once: true })
  reply.sse.onClose(() => {
    gone.abort()
    release()
  })
  // Headers now, not with the first event: a quiet stream of all jobs may have none for a while.
  reply.sse.sendHeaders()
  reply.raw.flushHeaders()
  try {
    await reply.sse.send(jobEvents(app.downloads, { jobId, minIntervalMs: MIN_EVENT_INTERVAL_MS, signal: gone.signal }))
  } finally {
    app.eventStreams.closing.removeEventListener('abort', end)
    gone.abort()
    release()
  }
}
