import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { percentile } from './stats.js'

/** Node's arguments that preload the probe (event-loop-probe.ts) into a server. */
export const probeArgs = ['--import', new URL('./event-loop-probe.js', import.meta.url).href]

export interface EventLoopLag {
  samples: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  /** The probe's memory reading with the highest RSS in the window, in bytes. */
  peakMemory: { rss: number, heapUsed: number, arrayBuffers: number } | undefined
}

/**
 * The lag the probe recorded between two moments (Date.now()), waiting for the samples up to `to`
 * to be written. A sample is one 10 ms timer; its lag is how late it fired.
 */
export async function eventLoopLag (file: string, from: number, to: number): Promise<EventLoopLag> {
  for (let waited = 0; ; waited += 50) {
    const lines = readFileSync(file, { encoding: 'utf8', flag: 'a+' }).split('\n').filter((line) => line !== '')
    const samples = lines.filter((line) => !line.startsWith('M ')).map((line) => line.split(' ').map(Number) as [number, number])
    if ((samples.at(-1)?.[0] ?? 0) >= to) {
      const lags = samples.filter(([at]) => at >= from && at <= to).map(([, lag]) => Math.max(0, lag))
      if (lags.length === 0) throw new Error('the event-loop probe recorded nothing in that window')
      const memory = lines.filter((line) => line.startsWith('M ')).map((line) => line.split(' ').slice(1).map(Number) as [number, number, number, number])
        .filter(([at]) => at >= from && at <= to)
        .sort((a, b) => b[1] - a[1])[0]
      return {
        samples: lags.length,
        p50Ms: percentile(lags, 50),
        p99Ms: percentile(lags, 99),
        maxMs: Math.max(...lags),
        peakMemory: memory === undefined ? undefined : { rss: memory[1], heapUsed: memory[2], arrayBuffers: memory[3] }
      }
    }
    if (waited > 5000) throw new Error(`the event-loop probe has written nothing since ${new Date(to).toISOString()}`)
    await sleep(50)
  }
}
