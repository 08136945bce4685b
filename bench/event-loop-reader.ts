import { readFileSync, writeFileSync } from 'node:fs'
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

/** One memory line of the probe: process.memoryUsage() in the server, in bytes, at `at` (Date.now()). */
export interface ProbeMemory { at: number, rss: number, heapUsed: number, arrayBuffers: number }

/**
 * The lag the probe recorded between two moments (Date.now()), waiting for the samples up to `to`
 * to be written. A sample is one 10 ms timer; its lag is how late it fired.
 */
export async function eventLoopLag (file: string, from: number, to: number): Promise<EventLoopLag> {
  const { lags, memory } = await probeLines(file, from, to)
  if (lags.length === 0) throw new Error('the event-loop probe recorded nothing in that window')
  const peak = [...memory].sort((a, b) => b.rss - a.rss)[0]
  return {
    samples: lags.length,
    p50Ms: percentile(lags, 50),
    p99Ms: percentile(lags, 99),
    maxMs: Math.max(...lags),
    peakMemory: peak === undefined ? undefined : { rss: peak.rss, heapUsed: peak.heapUsed, arrayBuffers: peak.arrayBuffers }
  }
}

/** Every memory reading of the probe between two moments, oldest first (about four a second). */
export async function probeMemory (file: string, from: number, to: number): Promise<ProbeMemory[]> {
  return (await probeLines(file, from, to)).memory
}

/** The probe's lines between two moments, once it has written past `to`. */
async function probeLines (file: string, from: number, to: number): Promise<{ lags: number[], memory: ProbeMemory[] }> {
  for (let waited = 0; ; waited += 50) {
    const lines = readProbeFile(file)
    const samples = lines.filter((line) => !line.startsWith('M ') && !line.startsWith('G ')).map((line) => line.split(' ').map(Number) as [number, number])
    if ((samples.at(-1)?.[0] ?? 0) >= to) {
      const memory = memoryLines(lines, 'M').filter(({ at }) => at >= from && at <= to)
      return { lags: samples.filter(([at]) => at >= from && at <= to).map(([, lag]) => Math.max(0, lag)), memory }
    }
    if (waited > 5000) throw new Error(`the event-loop probe has written nothing since ${new Date(to).toISOString()}`)
    await sleep(50)
  }
}

/**
 * Has the probe run a full garbage collection in a server started with --expose-gc (at its next
 * flush, within a quarter second), and answers the memory left after it.
 */
export async function memoryAfterFullGc (file: string): Promise<ProbeMemory> {
  const before = memoryLines(readProbeFile(file), 'G').length
  writeFileSync(`${file}.gc`, '')
  for (let waited = 0; ; waited += 20) {
    const after = memoryLines(readProbeFile(file), 'G')
    if (after.length > before) return after.at(-1)!
    if (waited > 10_000) throw new Error('the event-loop probe ran no garbage collection: is the server started with --expose-gc?')
    await sleep(20)
  }
}

function readProbeFile (file: string): string[] {
  return readFileSync(file, { encoding: 'utf8', flag: 'a+' }).split('\n').filter((line) => line !== '')
}

function memoryLines (lines: string[], tag: 'M' | 'G'): ProbeMemory[] {
  return lines.filter((line) => line.startsWith(`${tag} `)).map((line) => {
    const [at, rss, heapUsed, arrayBuffers] = line.split(' ').slice(1).map(Number) as [number, number, number, number]
    return { at, rss, heapUsed, arrayBuffers }
  })
}
