import { LOAD_TARGETS } from './api-overhead.js'
import { mb, num, range, table } from './format.js'
import { AT_REST_MS, IDLE_PIECES, type IdleRound } from './idle-memory.js'
import type { Machine } from './machine.js'
import { START_COMMAND } from './modeldepot-server.js'
import {
  definedSpread, eventLoopDuringDownload, mbPerSecond, peakRssLarge, peakRssSmall, reportedEventLoop, speedRatios, speeds,
  type BenchResults, type ThroughputResults
} from './results-model.js'
import { percentile, spread, type Spread } from './stats.js'
import { checkTargets, throughputTargets, type TargetCheck } from './targets.js'
import { TIMED, type ThroughputResult, type Timed } from './throughput.js'

const MiB = 1024 * 1024
const DOWNLOADERS: Record<Timed, string> = {
  modeldepot: 'modeldepot: POST, then GET progress?wait=10 (hashes, fsyncs each blob)',
  curl: 'curl, every file in parallel, straight to disk',
  'curl + fsync': 'the same curl run, plus `sync` of its files afterwards',
  'curl + sha256sum': 'the same curl run, plus `sha256sum` of its large files afterwards (a process each, at once)',
  snapshotDownload: '@huggingface/hub snapshotDownload',
  huggingface_hub: 'Python huggingface_hub snapshot_download (8 files at once, no Xet)',
  'modeldepot (baseline)': 'modeldepot, the baseline build (BENCH_BASELINE_SERVER), the same way'
}
const mbSpread = (s: Spread | undefined): Spread | undefined => s && { min: s.min / 1e6, median: s.median / 1e6, max: s.max / 1e6 }

function throughputTable (r: ThroughputResults, run: ThroughputResult): string {
  const ran = TIMED.filter((name) => run.rounds.some((round) => round.seconds[name] !== undefined))
  return table(['Downloader', 'MB/s', 'Seconds (median)', 'modeldepot is … × as fast', 'Fake Hub CPU s (median)'], ran.map((name) => [
    DOWNLOADERS[name],
    range(speeds(r, name, run)),
    num(definedSpread(run.rounds.map((round) => round.seconds[name]))?.median, 2),
    name === 'modeldepot' ? '' : range(speedRatios(r, name, run), 2),
    name === 'curl + fsync' || name === 'curl + sha256sum' ? '' : num(definedSpread(run.rounds.map((round) => round.hubCpuSeconds[name]))?.median, 1)
  ]))
}

export const machineLine = (m: Machine): string =>
  `${m.date} · ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM · Node ${m.node} · ${m.os} · temp dir on ${m.fileSystem} · ${m.curl}`

/** The whole run as Markdown: what stdout shows and bench/results/*.md keeps. */
export function renderReport (r: BenchResults): string {
  const { machine: m, settings: s } = r
  const shards = `2 × ${s.shardBytes / MiB} MiB`
  return [
    `# modeldepot benchmarks (${s.quick ? 'quick' : 'full'} run)`,
    '',
    machineLine(m),
    '',
    'Everything runs on loopback on this one machine: the fake Hub (test/fakes, generated content) in a process of its own, and',
    `modeldepot started as \`npm start\` starts it (\`${START_COMMAND}\`) with its default settings, except \`RATE_LIMIT_PER_MINUTE=1000000000\` so load`,
    'tests measure the server rather than its 429s. Figures are min / **median** / max over the rounds; a ratio is taken within',
    'each round (the contenders alternate order from round to round), then summarised. MB = 10^6 bytes.',
    '',
    '## Targets',
    '',
    targetsTable(checkTargets(r)),
    '',
    ...pythonLines(r.pythonNotes),
    `## 1. Throughput: ${shards} LFS files + small files (${mb(r.throughput.bytes - 2 * s.shardBytes)}), ${s.throughputRounds} rounds`,
    '',
    throughputTable(r, r.throughput),
    '',
    `## 1b. The same with each connection capped at ${num(s.capBytesPerSecond / 1e6, 0)} MB/s, as a CDN caps them: 2 × ${s.cappedShardBytes / MiB} MiB, ${s.cappedRounds} rounds`,
    '',
    throughputTable(r, r.capped),
    '',
    '## 2. Memory: peak RSS (VmHWM) of the server process',
    '',
    table(['Process', 'MB'], [
      ['modeldepot, idle after start-up, event-loop probe preloaded', range(mbSpread(definedSpread(r.throughput.rounds.map((round) => round.api.idleRssBytes))))],
      [`modeldepot, downloading 2 × ${s.smallShardBytes / MiB} MiB (${s.memoryRounds} rounds)`, range(mbSpread(peakRssSmall(r)))],
      [`modeldepot, downloading ${shards} (${s.throughputRounds} rounds)`, range(mbSpread(peakRssLarge(r)))],
      [`snapshotDownload's process, ${shards}, for comparison`, range(mbSpread(spread(r.throughput.rounds.map((round) => round.snapshotPeakRssBytes))))],
      [`Python snapshot_download's process, ${shards}, for comparison`, range(mbSpread(definedSpread(r.throughput.rounds.map((round) => round.pythonPeakRssBytes))))]
    ]),
    '',
    idleSection(r.idle),
    `At the highest RSS the in-server probe saw during each download of ${shards}, the V8 heap in use was`,
    `${range(mbSpread(definedSpread(r.throughput.rounds.map((round) => round.api.eventLoop.peakMemory?.heapUsed))))} MB and Buffers (array buffers) held`,
    `${range(mbSpread(definedSpread(r.throughput.rounds.map((round) => round.api.eventLoop.peakMemory?.arrayBuffers))))} MB.`,
    `CPU of the server process (all threads) per download of ${shards}: ${range(definedSpread(r.throughput.rounds.map((round) => round.api.cpuSeconds)), 1, ' s')}.`,
    '',
    resumeSection(r),
    overheadSection(r),
    `While ${shards} download: GET /api/download-progress?job_id answered ${num(r.underDownload.load.requestsPerSecond, 0)} req/s at p99 ${num(r.underDownload.load.p99Ms, 0)} ms;`,
    `the download ran at ${num(mbPerSecond(r.underDownload.downloadBytes, r.underDownload.downloadSeconds))} MB/s (${num(speeds(r, 'modeldepot')?.median)} MB/s without the load).`,
    'Event-loop lag p99, measured inside the server by a preloaded probe (bench/event-loop-probe.ts) from the POST to the end:',
    `${range(eventLoopDuringDownload(r), 1, ' ms')} over the plain downloads of (1), ${num(r.underDownload.eventLoop.p99Ms, 1)} ms (max ${num(r.underDownload.eventLoop.maxMs, 0)} ms)`,
    `with the load on top. The server's own \`event_loop_delay_p99_ms\` (GET /api/system-status) read ${range(reportedEventLoop(r), 1, ' ms')} after the plain`,
    'downloads: it counts since start-up and its samples include their 20 ms interval.',
    '',
    scaleSection(r),
    ''
  ].join('\n')
}

/** The baseline build's figures beside this build's, where one ran. */
function baselineLines (rounds: ThroughputResult['rounds']): string[] {
  const runs = rounds.map((round) => round.baseline).filter((run) => run !== undefined)
  if (runs.length === 0) return []
  return [
    `The baseline build in the same rounds: peak RSS ${range(mbSpread(definedSpread(runs.map((run) => run.peakRssBytes))))} MB,`,
    `CPU ${range(definedSpread(runs.map((run) => run.cpuSeconds)), 1, ' s')}, event-loop lag p99 ${range(spread(runs.map((run) => run.eventLoop.p99Ms)), 1, ' ms')}.`
  ]
}

const targetsTable = (checks: TargetCheck[]): string =>
  table(['Target', 'This run', 'Met'], checks.map((c) => [c.target, c.result, c.met === undefined ? 'n/a' : c.met ? 'yes' : '**no**']))

/** Which Python huggingface_hub ran, or why none did. */
function pythonLines (notes: string[]): string[] {
  return notes.length === 0 ? [] : ['Python huggingface_hub: ' + notes.join('; ') + '.', '']
}

/** (1) and (1b) with their targets, the peak RSS and the event loop of (1): what `--only=throughput` prints. */
export function throughputSection (r: ThroughputResults & Pick<BenchResults, 'pythonNotes'>): string {
  const s = r.settings
  const shards = `2 × ${s.shardBytes / MiB} MiB`
  const rounds = r.throughput.rounds
  return [
    '## Targets (throughput, memory and event loop of the download)',
    '',
    targetsTable(throughputTargets(r)),
    '',
    ...pythonLines(r.pythonNotes),
    `## 1. Throughput: ${shards} LFS files + small files (${mb(r.throughput.bytes - 2 * s.shardBytes)}), ${rounds.length} rounds`,
    '',
    throughputTable(r, r.throughput),
    '',
    `Peak RSS (VmHWM) of the server: ${range(mbSpread(definedSpread(rounds.map((round) => round.api.idleRssBytes))))} MB idle after start-up,`,
    `${range(mbSpread(peakRssLarge(r)))} MB downloading ${shards}; at its highest the V8 heap held`,
    `${range(mbSpread(definedSpread(rounds.map((round) => round.api.eventLoop.peakMemory?.heapUsed))))} MB and Buffers`,
    `${range(mbSpread(definedSpread(rounds.map((round) => round.api.eventLoop.peakMemory?.arrayBuffers))))} MB.`,
    `snapshotDownload's process peaked at ${range(mbSpread(spread(rounds.map((round) => round.snapshotPeakRssBytes))))} MB, Python's at ${range(mbSpread(definedSpread(rounds.map((round) => round.pythonPeakRssBytes))))} MB.`,
    `CPU of the server process (all threads) per download: ${range(definedSpread(rounds.map((round) => round.api.cpuSeconds)), 1, ' s')}.`,
    `Event-loop lag p99 (the preloaded probe, from the POST to the end): ${range(eventLoopDuringDownload(r), 1, ' ms')}; max ${range(definedSpread(rounds.map((round) => round.api.eventLoop.maxMs)), 0, ' ms')}.`,
    ...baselineLines(rounds),
    '',
    `## 1b. The same with each connection capped at ${num(s.capBytesPerSecond / 1e6, 0)} MB/s, as a CDN caps them: 2 × ${s.cappedShardBytes / MiB} MiB, ${r.capped.rounds.length} rounds`,
    '',
    throughputTable(r, r.capped),
    ''
  ].join('\n')
}

/** (3) alone: in the full report, and what `--only=resume` prints. */
export function resumeSection (r: Pick<BenchResults, 'settings' | 'resume'>): string {
  const shards = `2 × ${r.settings.shardBytes / MiB} MiB`
  return [
    `## 3. Resume: kill -9 at half way through ${shards}, restart, same request`,
    '',
    table(['Round', 'Job progress at the kill', 'Missing (checked on disk)', 'Missing (restarted plan says)', 'Fetched after restart', 'Fetched ÷ missing', 'Seconds to complete after restart'],
      r.resume.map((round, i) => [
        String(i + 1),
        `${num((100 * round.reportedAtKill) / round.totalBytes, 0)} %`,
        mb(round.missingBytes),
        mb(round.plannedMissingBytes),
        mb(round.fetchedBytes),
        num(round.fetchedBytes / round.missingBytes, 3),
        num(round.secondsAfterRestart, 1)
      ])),
    '',
    'A parted file resumes each part from its last checkpoint (saved every 250 ms) plus what the part wrote after it, read',
    'from the partial (src/downloads/written-past-checkpoint.ts); the restart also waits for the killed server\'s blob locks to',
    'go stale (up to 10 s).',
    ''
  ].join('\n')
}

/** (4), its table: /health and download-progress beside a bare Fastify hello-world. */
export function overheadSection (r: Pick<BenchResults, 'settings' | 'overhead'>): string {
  const s = r.settings
  return [
    `## 4. API overhead: autocannon, ${s.connections} connections, ${s.loadSeconds} s × ${s.loadRounds} rounds`,
    '',
    table(['Target', 'Requests/s', 'p99 ms', 'Req/s ÷ hello-world', 'p99 ÷ hello-world', 'Server CPU % (median)'], LOAD_TARGETS.map((name) => {
      const runs = r.overhead.map((round) => round[name])
      const versusHello = (pick: (run: typeof runs[number]) => number): Spread => spread(r.overhead.map((round) => pick(round[name]) / pick(round['hello-world'])))
      return [
        name === 'hello-world' ? 'bare Fastify hello-world (baseline)' : name,
        range(spread(runs.map((run) => run.requestsPerSecond)), 0),
        range(spread(runs.map((run) => run.p99Ms)), 0),
        name === 'hello-world' ? '' : range(versusHello((run) => run.requestsPerSecond), 2),
        name === 'hello-world' ? '' : range(versusHello((run) => Math.max(1, run.p99Ms)), 2),
        num(definedSpread(runs.map((run) => run.serverCpuPercent))?.median, 0)
      ]
    })),
    ''
  ].join('\n')
}

/** (5): latencies with many queued jobs and with a many-file repository. */
export function scaleSection (r: Pick<BenchResults, 'settings' | 'queue' | 'manyFiles'>): string {
  const s = r.settings
  return [
    `## 5. Scale: ${s.queuedJobs} queued jobs, a ${s.manyFiles}-file repository`,
    '',
    table(['Call', 'p50 ms', 'p99 ms', 'max ms', 'Calls'], [...r.queue, ...r.manyFiles.latencies].map((latency) => [
      latency.call,
      num(percentile(latency.samples, 50), 1),
      num(percentile(latency.samples, 99), 1),
      num(Math.max(...latency.samples), 1),
      String(latency.samples.length)
    ])),
    '',
    `The ${s.manyFiles} files downloaded in ${num(r.manyFiles.downloadSeconds, 1)} s (${num(s.manyFiles / r.manyFiles.downloadSeconds, 0)} files/s).`
  ].join('\n')
}

const PIECE_NAMES: Record<(typeof IDLE_PIECES)[number], string> = {
  node: 'Node alone',
  modules: 'its modules imported',
  app: 'the app built and ready'
}

/** Issue 18's idle figure: the server as a user starts it, nothing preloaded; then what it is made of. */
export function idleSection (idle: IdleRound[]): string {
  const pieces = IDLE_PIECES.map((piece) => `${PIECE_NAMES[piece]} ${range(mbSpread(definedSpread(idle.map((round) => round.pieces[piece]))), 1)}`)
  return [
    `Idle, \`${START_COMMAND}\` (what \`npm start\` runs) with its default settings and API_KEY, nothing preloaded, 2 s after it answers (${idle.length} rounds):`,
    `VmHWM ${range(mbSpread(definedSpread(idle.map((round) => round.peakRssBytes))), 1)} MB, VmRSS ${range(mbSpread(definedSpread(idle.map((round) => round.rssBytes))), 1)} MB;`,
    `VmRSS ${range(mbSpread(definedSpread(idle.map((round) => round.atRestRssBytes))), 1)} MB after ${AT_REST_MS / 1000} s at rest (V8 returns the heap's start-up garbage to the system in its memory reducer's collections, 15–20 s after start here).`,
    `The same in pieces (VmHWM, MB, a process each): ${pieces.join('; ')}.`,
    ''
  ].join('\n')
}
