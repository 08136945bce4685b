import { setTimeout as sleep } from 'node:timers/promises'
import { Client } from 'undici'
import { API_KEY } from './modeldepot-server.js'
import { checkPollAnswer, type ExpectedJob, type PollKind } from './poll-answer-check.js'

// The polling clients: each one its own keep-alive connection, asking about one job over and over,
// the next request as soon as the last answer is in (an n8n loop with no Wait node: far harsher than
// a real loop, which waits seconds). Every answer is read whole and checked (poll-answer-check.ts);
// autocannon would count status codes only, and hit one URL per run.

/** A long poll holds the answer this long (the jobs do not end meanwhile). */
export const LONG_POLL_SECONDS = 2

export interface PollPlan {
  baseUrl: string
  jobs: ExpectedJob[]
  clients: number
  /** Date.now() when counting starts (before it: warm-up) and when the clients stop asking. */
  measureFrom: number
  until: number
}

export interface PollResults {
  /** Valid answers to requests sent in the measured part, by kind, with their latencies in ms. */
  latenciesMs: Record<PollKind, number[]>
  /** How many clients polled each way. */
  clientsOf: Record<PollKind, number>
  /** Those answers in each second of the measured part. */
  perSecond: number[]
  /** The slowest answer to a request sent in the warm-up: the first ones, on new connections to cold routes. */
  warmUpMaxMs: number
  /** Requests sent over the whole run, warm-up included. */
  sent: number
  /** Over the whole run, warm-up included: connection errors, answers other than 200, invalid bodies. */
  errors: { socket: number, status: number, invalid: number }
  /** The first few errors, as lines for the report. */
  errorSamples: string[]
  /** Jobs some poll saw complete before the clients stopped: the downloads were meant to outlast the load. */
  endedDuringLoad: Set<string>
  /** CPU the polling clients (this process) used in the measured part, in % of one core. */
  clientCpuPercent: number
}

const MAX_ERROR_SAMPLES = 10

/**
 * Client i polls job i mod jobs, so every job has as many pollers. Clients go in groups of one per
 * job: of every ten groups, five read progress, four read the job, one long-polls.
 */
function kindOf (client: number, jobs: number): PollKind {
  const group = Math.floor(client / jobs)
  if (group % 10 === 9) return 'long-poll'
  return group % 2 === 0 ? 'progress' : 'job'
}

function pathOf (kind: PollKind, jobId: string): string {
  if (kind === 'job') return `/api/downloads/${jobId}`
  return `/api/download-progress?job_id=${jobId}${kind === 'long-poll' ? `&wait=${LONG_POLL_SECONDS}` : ''}`
}

/** Runs the clients until `plan.until`, then waits for the answers in flight and closes their connections. */
export async function poll (plan: PollPlan): Promise<PollResults> {
  const results: PollResults = {
    latenciesMs: { progress: [], job: [], 'long-poll': [] },
    clientsOf: { progress: 0, job: 0, 'long-poll': 0 },
    perSecond: [],
    warmUpMaxMs: 0,
    sent: 0,
    errors: { socket: 0, status: 0, invalid: 0 },
    errorSamples: [],
    endedDuringLoad: new Set(),
    clientCpuPercent: 0
  }
  const fail = (kind: keyof PollResults['errors'], line: string): void => {
    results.errors[kind]++
    if (results.errorSamples.length < MAX_ERROR_SAMPLES) results.errorSamples.push(`${new Date().toISOString()} ${line}`)
  }
  const clients = Array.from({ length: plan.clients }, () => new Client(plan.baseUrl, { pipelining: 1 }))
  let cpu: { usage: NodeJS.CpuUsage, at: number } | undefined
  const cpuStart = setTimeout(() => { cpu = { usage: process.cpuUsage(), at: performance.now() } }, Math.max(0, plan.measureFrom - Date.now()))

  const pollOne = async (client: Client, index: number): Promise<void> => {
    const expected = plan.jobs[index % plan.jobs.length]!
    const kind = kindOf(index, plan.jobs.length)
    results.clientsOf[kind]++
    const path = pathOf(kind, expected.jobId)
    let previous = 0
    while (Date.now() < plan.until) {
      const sentAt = Date.now()
      const started = performance.now()
      results.sent++
      try {
        const answer = await client.request({ method: 'GET', path, headers: { authorization: `Bearer ${API_KEY}` } })
        const text = await answer.body.text()
        const ms = performance.now() - started
        if (answer.statusCode !== 200) {
          fail('status', `${path}: ${answer.statusCode} ${text.slice(0, 200)}`)
          continue
        }
        const checked = checkPollAnswer(kind, text, expected, previous)
        if ('invalid' in checked) {
          fail('invalid', `${path}: ${checked.invalid}`)
          continue
        }
        previous = checked.job.bytes_downloaded
        if (checked.job.status === 'complete') results.endedDuringLoad.add(expected.jobId)
        // Only requests sent in the measured part count: the first ones wait for new connections and cold routes.
        if (sentAt < plan.measureFrom) {
          results.warmUpMaxMs = Math.max(results.warmUpMaxMs, ms)
          continue
        }
        results.latenciesMs[kind].push(ms)
        const second = Math.floor((Date.now() - plan.measureFrom) / 1000)
        results.perSecond[second] = (results.perSecond[second] ?? 0) + 1
      } catch (err) {
        fail('socket', `${path}: ${(err as Error).message}`)
        // A server that went away would otherwise be asked again in a tight loop.
        await sleep(100)
      }
    }
  }

  try {
    await Promise.all(clients.map(pollOne))
  } finally {
    clearTimeout(cpuStart)
    await Promise.all(clients.map(async (client) => client.close()))
  }
  if (cpu !== undefined) {
    const used = process.cpuUsage(cpu.usage)
    results.clientCpuPercent = ((used.user + used.system) / 1e3 / (performance.now() - cpu.at)) * 100
  }
  // A second cut short by the deadline would read as a dip.
  results.perSecond = Array.from({ length: Math.floor((plan.until - plan.measureFrom) / 1000) }, (_, i) => results.perSecond[i] ?? 0)
  return results
}
