import { mb, num, table } from './format.js'
import { memoryWindows, ratioOf, type LoadCheck } from './load-checks.js'
import type { Machine } from './machine.js'
import { START_COMMAND } from './modeldepot-server.js'
import { windowMean } from './memory-sampler.js'
import { POLL_KINDS, type PollKind } from './poll-answer-check.js'
import { LONG_POLL_SECONDS } from './pollers.js'
import type { LoadResults } from './polling-load.js'
import { percentile, MiB } from './stats.js'

const REQUESTS: Record<PollKind, string> = {
  progress: 'GET /api/download-progress?job_id=…',
  job: 'GET /api/downloads/{job_id}',
  'long-poll': `GET /api/download-progress?job_id=…&wait=${LONG_POLL_SECONDS}`
}
/** Seconds per row of the timeline. */
const STEP_SECONDS = 5

function pollsTable (r: LoadResults): string {
  const { polls, settings: s } = r
  const row = (label: string, clients: number, latencies: number[]): string[] => [
    label,
    String(clients),
    String(latencies.length),
    num(latencies.length / s.seconds, 0),
    latencies.length === 0 ? 'n/a' : num(percentile(latencies, 50), 1),
    latencies.length === 0 ? 'n/a' : num(percentile(latencies, 99), 1),
    latencies.length === 0 ? 'n/a' : num(percentile(latencies, 100), 1)
  ]
  const all = POLL_KINDS.flatMap((kind) => polls.latenciesMs[kind])
  return table(['Request', 'Clients', 'Answers', 'Answers/s', 'p50 ms', 'p99 ms', 'max ms'], [
    ...POLL_KINDS.map((kind) => row(REQUESTS[kind], polls.clientsOf[kind], polls.latenciesMs[kind])),
    row('**all**', s.clients, all)
  ])
}

function memoryTable (r: LoadResults): string {
  const m = memoryWindows(r)
  const w = r.settings.windowSeconds
  return table(['Window', 'RSS (/proc, every second)', 'V8 heap used (probe)', 'Buffers (probe)'], [
    [`first ${w} s`, mb(m.rss.first), mb(m.heapUsed.first), mb(m.arrayBuffers.first)],
    [`last ${w} s`, mb(m.rss.last), mb(m.heapUsed.last), mb(m.arrayBuffers.last)],
    ['last ÷ first', `${num(ratioOf(m.rss), 3)}×`, `${num(ratioOf(m.heapUsed), 3)}×`, `${num(ratioOf(m.arrayBuffers), 3)}×`]
  ])
}

function timelineTable (r: LoadResults): string {
  const rows: string[][] = []
  for (let from = 0; from < r.settings.seconds; from += STEP_SECONDS) {
    const to = Math.min(r.settings.seconds, from + STEP_SECONDS)
    const answers = r.polls.perSecond.slice(from, to).reduce((sum, n) => sum + n, 0)
    const [start, end] = [r.measureFrom + from * 1000, r.measureFrom + to * 1000]
    rows.push([
      `${from}–${to}`,
      num(answers / (to - from), 0),
      mb(windowMean(r.rss, (sample) => sample.rssBytes, start, end)),
      mb(windowMean(r.probe, (sample) => sample.heapUsed, start, end)),
      mb(windowMean(r.probe, (sample) => sample.arrayBuffers, start, end))
    ])
  }
  return table(['Seconds', 'Answers/s', 'RSS', 'V8 heap used', 'Buffers'], rows)
}

function downloadsTable (r: LoadResults): string {
  return table(['Model', 'Size', 'When the clients stopped', 'Complete after (from the POST)', 'Files'], r.downloads.map((download) => [
    download.modelId,
    mb(download.bytes),
    download.statusAtEndOfLoad,
    download.seconds === undefined ? 'did not complete' : `${num(download.seconds, 1)} s`,
    download.failure ?? 'every file hashed and matched'
  ]))
}

/** The load run as Markdown: what stdout shows and bench/results/load*.md keeps. */
export function renderLoadReport (m: Machine, r: LoadResults, checks: LoadCheck[]): string {
  const s = r.settings
  const env = Object.entries(r.serverEnv).map(([name, value]) => `\`${name}=${value}\``).join(' and ')
  const errorLines = r.polls.errorSamples.length === 0 ? [] : ['', 'The first errors:', '', ...r.polls.errorSamples.map((line) => `- ${line}`)]
  return [
    `# modeldepot load benchmark (${s.quick ? 'quick' : 'full'} run)`,
    '',
    `${m.date} · ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM · Node ${m.node} · ${m.os} · temp dir on ${m.fileSystem}`,
    '',
    `${s.clients} clients poll the progress of ${s.downloads} downloads for ${s.seconds} s, after ${s.warmUpSeconds} s of warm-up that is not counted. Each has its own`,
    'keep-alive connection and asks again as soon as its answer is in: an n8n loop without a Wait node, far harsher than a',
    'real one. Every answer is read whole and checked against the response schema of its route, the job asked about, and the',
    'bytes that client saw before.',
    '',
    'Everything runs on loopback on this one machine: the fake Hub (test/fakes, generated content) in a process of its own,',
    `the clients in the harness's process, and modeldepot started as \`${START_COMMAND}\` with its defaults except what an`,
    `operator would set for this load: ${env}. All clients share one API key, as n8n workflows share one`,
    'credential, and the default budget of 60 requests a minute would refuse all but the first 60 polls (the limiter still counts',
    'every request); the default of 2 downloads at once would queue half of them.',
    '',
    `Each model is 2 × ${s.shardBytes / MiB} MiB shards plus the usual small files. The Hub sends each shard at ${num(s.capBytesPerSecond / 1e6, 1)} MB/s at most, so the`,
    'downloads outlast the load; then the harness waits for them to complete and hashes every file in the cache.',
    '',
    'Memory: the server\'s VmRSS read from /proc every second; the V8 heap and Buffers read inside it by the preloaded probe',
    '(bench/event-loop-probe.ts) four times a second; and, at the start and at the end of the measured run, a full garbage',
    'collection run by the probe (the server is started with `--expose-gc` for it) and the heap it leaves: what is really live.',
    'The first one also puts V8\'s heap sizing at the same point for every run (see `RSS_GROWTH_TOLERANCE` in bench/load-checks.ts).',
    'MB = 10^6 bytes.',
    '',
    '## Checks',
    '',
    table(['Check', 'This run', 'Pass'], checks.map((c) => [c.check, c.result, c.pass === undefined ? 'printed only' : c.pass ? 'yes' : '**no**'])),
    ...errorLines,
    '',
    `## Polls over the measured ${s.seconds} s`,
    '',
    pollsTable(r),
    '',
    `The first answers of the warm-up, on ${s.clients} new connections to routes not yet run, took up to ${num(r.polls.warmUpMaxMs / 1000, 1)} s (not counted above).`,
    `Server CPU: ${num(r.serverCpuPercent, 0)} % of one core; the polling clients (the harness) used ${num(r.polls.clientCpuPercent, 0)} %.`,
    `Event-loop lag in the server (probe): p50 ${num(r.eventLoop.p50Ms, 1)} ms, p99 ${num(r.eventLoop.p99Ms, 1)} ms, max ${num(r.eventLoop.maxMs, 0)} ms.`,
    `The Hub sent ${num(r.downloadBytesPerSecond / 1e6, 2)} MB/s to the ${s.downloads} downloads meanwhile ` +
      `(its cap allows ${num((2 * s.downloads * s.capBytesPerSecond) / 1e6, 1)} MB/s for the shards).`,
    '',
    '## Memory of the server',
    '',
    memoryTable(r),
    '',
    `After the full GC at the start the heap held ${mb(r.live.first.heapUsed)} (RSS ${mb(r.live.first.rss)}), after the one at the end ${mb(r.live.last.heapUsed)} (RSS ${mb(r.live.last.rss)}).`,
    '',
    timelineTable(r),
    '',
    '## Downloads',
    '',
    downloadsTable(r),
    ''
  ].join('\n')
}
