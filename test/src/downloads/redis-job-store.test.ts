import { basename } from 'node:path'
import { Redis } from 'ioredis'
import t from 'tap'
import { RedisJobStore } from '../../../src/downloads/redis-job-store.js'
import { startRedisServer } from '../../helpers/redis-server.js'
import { JobLeaseLostError } from '../../../src/downloads/job-store.js'
import { jobFor, jobStoreContract, requestFor } from './job-store-contract.js'

// The shared store against a real redis-server: two stores over the same place are two replicas
// on one Redis, under one key prefix.
const server = await startRedisServer(t)
const clients: Redis[] = []
t.teardown(() => { for (const client of clients) client.disconnect() })

jobStoreContract(t, async (place, options = {}) => {
  const redis = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 })
  clients.push(redis)
  await new Promise((resolve) => redis.once('ready', resolve))
  return new RedisJobStore({ redis, keyPrefix: `test:${basename(place)}:`, leaseMs: 3000, ...(options.limit === undefined ? {} : { limit: options.limit }) })
})

const replica = async (prefix: string, leaseMs: number): Promise<RedisJobStore> => {
  const redis = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 })
  clients.push(redis)
  await new Promise((resolve) => redis.once('ready', resolve))
  return new RedisJobStore({ redis, keyPrefix: prefix, leaseMs })
}

t.test('a replica that stops renewing its lease loses the job to another, and can no longer change it', async (t) => {
  const a = await replica('lease:', 1000)
  const b = await replica('lease:', 1000)
  t.teardown(async () => { await b.close() })
  const request = requestFor('org/lease')
  const { job } = await a.create(jobFor(request), request)
  const taken = await a.claim(1)
  t.equal(taken?.job_id, job.job_id, 'A runs it')
  const commands: string[] = []
  a.onCommand((command) => commands.push(command.kind))
  t.equal(await b.claim(1), undefined, 'B has no room while A runs it: the limit is the cluster\'s')
  // A hangs: its heartbeat stops (as a paused process's would), its lease runs out.
  await a.close()
  let again
  for (let i = 0; i < 50 && again === undefined; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    again = await b.claim(1)
  }
  t.equal(again?.job_id, job.job_id, 'B takes the job over once A\'s lease ran out')
  t.match(await b.get(job.job_id), { status: 'downloading' })
  await t.rejects(a.fence(job.job_id), JobLeaseLostError, 'A may not publish it any more')
  await t.rejects(a.transition(job.job_id, 'verifying'), JobLeaseLostError, 'nor move it on')
  const ended = await b.transition(job.job_id, 'verifying')
  t.equal(ended.status, 'verifying', 'B goes on')
  await b.fence(job.job_id)
  t.match(await b.transition(job.job_id, 'complete'), { status: 'complete' })
})
