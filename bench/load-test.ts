import autocannon from 'autocannon'
import { cpuSeconds } from './process-cpu.js'

export interface LoadTarget {
  url: string
  headers?: Record<string, string>
  /** The server process, to report how busy it was. */
  pid: number
}

export interface LoadRun {
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  /** CPU of the server over the run, in % of one core. */
  serverCpuPercent: number | undefined
}

/**
 * autocannon against one URL, for `seconds` or until `stop` resolves. Any error or non-2xx answer
 * fails the run: a benchmark of 401s or 429s would measure the wrong thing.
 */
export async function loadTest (target: LoadTarget, connections: number, seconds: number, stop?: Promise<unknown>): Promise<LoadRun> {
  const cpuBefore = cpuSeconds(target.pid)
  const started = performance.now()
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({ url: target.url, headers: target.headers ?? {}, connections, duration: seconds }, (err, res) => {
      if (err !== null && err !== undefined) reject(err instanceof Error ? err : new Error(String(err)))
      else resolve(res)
    })
    void stop?.then(() => instance.stop(), () => instance.stop())
  })
  const elapsed = (performance.now() - started) / 1000
  const cpuAfter = cpuSeconds(target.pid)
  if (result.errors > 0 || result.non2xx > 0) {
    throw new Error(`${target.url}: ${result.errors} errors and ${result.non2xx} non-2xx answers under load`)
  }
  return {
    requestsPerSecond: result.requests.total / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    serverCpuPercent: cpuBefore === undefined || cpuAfter === undefined ? undefined : ((cpuAfter - cpuBefore) / elapsed) * 100
  }
}
