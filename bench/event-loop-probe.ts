import { appendFileSync, existsSync, rmSync } from 'node:fs'

// Preloaded into a server (`node --import ./event-loop-probe.js server.js`) to measure it from inside
// without touching its code: a 10 ms timer records how late it fires, and every quarter second the
// samples ("epoch-ms lag-ms" lines) are appended to BENCH_EVENT_LOOP_FILE, with one line of memory
// ("M epoch-ms rss heapUsed arrayBuffers", bytes). Unlike monitorEventLoopDelay, whose samples
// include its own sampling interval, the lag here is the lag alone. In a server started with
// --expose-gc, a file BENCH_EVENT_LOOP_FILE.gc asks for a full garbage collection: the probe runs it
// at its next flush, deletes the file and appends what is left ("G epoch-ms rss heapUsed
// arrayBuffers"), the live memory, which only a leak makes grow. (Not a signal: close-with-grace
// shuts the server down on SIGUSR2, and SIGUSR1 opens the inspector.)

const INTERVAL_MS = 10
const FLUSH_EVERY = 25
const file = process.env.BENCH_EVENT_LOOP_FILE
if (file === undefined) throw new Error('event-loop-probe: set BENCH_EVENT_LOOP_FILE')

const memoryLine = (tag: 'M' | 'G'): string => {
  const memory = process.memoryUsage()
  return `${tag} ${Date.now()} ${memory.rss} ${memory.heapUsed} ${memory.arrayBuffers}\n`
}

const gc = (globalThis as { gc?: () => void }).gc
const gcRequest = `${file}.gc`

let lines: string[] = []
let due = performance.now() + INTERVAL_MS
setInterval(() => {
  const now = performance.now()
  lines.push(`${Date.now()} ${(now - due).toFixed(2)}\n`)
  due = now + INTERVAL_MS
  if (lines.length >= FLUSH_EVERY) {
    lines.push(memoryLine('M'))
    if (gc !== undefined && existsSync(gcRequest)) {
      rmSync(gcRequest, { force: true })
      gc()
      lines.push(memoryLine('G'))
    }
    appendFileSync(file, lines.join(''))
    lines = []
  }
}, INTERVAL_MS).unref()
