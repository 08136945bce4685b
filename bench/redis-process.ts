import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'

export interface RedisProcess { url: string, stop: () => Promise<void> }

/** A redis-server of the run's own, on a free loopback port, nothing saved to disk. */
export async function startRedis (dir: string): Promise<RedisProcess> {
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const port = (probe.address() as { port: number }).port
  probe.close()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const url = `redis://127.0.0.1:${port}`
  for (let waited = 0; ; waited += 50) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    const answered = await client.connect().then(async () => await client.ping() === 'PONG', () => false)
    client.disconnect()
    if (answered) break
    if (waited > 10_000 || child.exitCode !== null) throw new Error('redis-server did not start (is it installed?)')
    await sleep(50)
  }
  return {
    url,
    stop: async () => {
      if (child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }
  }
}
