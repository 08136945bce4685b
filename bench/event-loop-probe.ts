import { appendFileSync } from 'node:fs'

// Preloaded into a server (`node --import ./event-loop-probe.js server.js`) to measure it from inside
// without touching its code: a 10 ms timer records how late it fires, and every quarter second the
// samples ("epoch-ms lag-ms" lines) are appended to BENCH_EVENT_LOOP_FILE, with one line of memory
// ("M epoch-ms rss heapUsed arrayBuffers", bytes). Unlike monitorEventLoopDelay, whose samples
// include its own sampling interval, the lag here is the lag alone.

const INTERVAL_MS = 10
const FLUSH_EVERY = 25
const file = process.env.BENCH_EVENT_LOOP_FILE
if (file === undefined) throw new Error('event-loop-probe: set BENCH_EVENT_LOOP_FILE')

let lines: string[] = []
let due = performance.now() + INTERVAL_MS
setInterval(() => {
  const now = performance.now()
  lines.push(`${Date.now()} ${(now - due).toFixed(2)}\n`)
  due = now + INTERVAL_MS
  if (lines.length >= FLUSH_EVERY) {
    const memory = process.memoryUsage()
    lines.push(`M ${Date.now()} ${memory.rss} ${memory.heapUsed} ${memory.arrayBuffers}\n`)
    appendFileSync(file, lines.join(''))
    lines = []
  }
}, INTERVAL_MS).unref()
