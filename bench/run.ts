import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { measureOverhead, measureOverheadDuringDownload } from './api-overhead.js'
import type { BenchContext } from './bench-context.js'
import { manyFilesModel, oneFileModel, weightsModel } from './bench-models.js'
import { startSession } from './bench-session.js'
import { HubProcess } from './hub-control.js'
import { describeMachine } from './machine.js'
import { renderReport } from './report.js'
import { measureResume } from './resume.js'
import { measureManyFiles, measureQueue } from './scale.js'
import { FULL, QUICK } from './settings.js'
import { measureCappedThroughput, measureMemory, measureThroughput } from './throughput.js'

// `npm run bench` (full) or `npm run bench -- --quick`: every measurement of issue 6 in one run,
// the report on stdout and in bench/results/. Nothing here asserts a speed; a run that cannot
// measure (a failed download, an error under load) exits non-zero. `--cpu-prof` also writes a V8
// CPU profile of every server that downloads in (1) and (2) to bench/results/profiles/ (the
// figures of such a run carry the profiler's cost, so its report goes to profiled.md).

const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url))

const quick = process.argv.includes('--quick')
const profiled = process.argv.includes('--cpu-prof')
const settings = quick ? QUICK : FULL
const profilesDir = join(RESULTS_DIR, 'profiles')
const { workDir, note, cleanUp } = startSession('bench')

const hub = await HubProcess.start()
try {
  const serverNodeArgs = profiled ? ['--cpu-prof', `--cpu-prof-dir=${profilesDir}`] : []
  const ctx: BenchContext = { hub, workDir, settings, note, serverNodeArgs }
  const weights = weightsModel('bench/weights', settings.shardBytes, 10)
  const smallWeights = weightsModel('bench/small-weights', settings.smallShardBytes, 20)
  const cappedWeights = weightsModel('bench/capped-weights', settings.cappedShardBytes, 50, 'capped')
  const tiny = oneFileModel('bench/tiny', { path: 'config.json', bytes: 700, lfs: false }, 30)
  // Below the part size, so each comes down as one (slow) stream.
  const blockers = [1, 2].map((n) => oneFileModel(`bench/blocker-${n}`, { path: 'blocker.safetensors', bytes: 32 * 1024 * 1024, lfs: true }, 40 + n))
  const queued = Array.from({ length: settings.queuedJobs }, (_, i) => oneFileModel(`bench/queued-${String(i).padStart(4, '0')}`, { path: 'config.json', bytes: 700, lfs: false }, 1000 + i))
  const manyFiles = manyFilesModel('bench/many-files', settings.manyFiles)
  note(`${quick ? 'quick' : 'full'} run in ${workDir}; the fake Hub hashes its files`)
  await hub.addModels([weights, smallWeights, cappedWeights, tiny, ...blockers, ...queued, manyFiles])

  const throughput = await measureThroughput(ctx, weights)
  const capped = await measureCappedThroughput(ctx, cappedWeights, settings.capBytesPerSecond)
  const memory = await measureMemory(ctx, smallWeights)
  const resume = await measureResume(ctx, weights)
  const overhead = await measureOverhead(ctx, tiny)
  const underDownload = await measureOverheadDuringDownload(ctx, weights)
  const queue = await measureQueue(ctx, blockers, queued)
  const many = await measureManyFiles(ctx, manyFiles)

  const report = renderReport({ machine: describeMachine(), settings, throughput, capped, memory, resume, overhead, underDownload, queue, manyFiles: many })
  process.stdout.write(`${report}\n`)
  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = join(RESULTS_DIR, profiled ? 'profiled.md' : quick ? 'quick.md' : 'latest.md')
  writeFileSync(file, report)
  note(`done; written to ${file}`)
  if (profiled) note(`CPU profiles in ${profilesDir}; summarize one with: node dist/bench/profile-summary.js FILE.cpuprofile`)
} finally {
  await hub.stop()
  cleanUp()
}
// Keep-alive sockets of the API client would hold the process open.
process.exit(0)
