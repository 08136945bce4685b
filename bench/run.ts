import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { measureOverhead, measureOverheadDuringDownload } from './api-overhead.js'
import type { BenchContext } from './bench-context.js'
import { manyFilesModel, oneFileModel, weightsModel, type BenchModel } from './bench-models.js'
import { startSession } from './bench-session.js'
import { HubProcess } from './hub-control.js'
import { measureIdleMemory } from './idle-memory.js'
import { describeMachine } from './machine.js'
import { findPythonHub } from './python-hub.js'
import { idleSection, machineLine, overheadSection, renderReport, resumeSection, scaleSection, throughputSection } from './report.js'
import { measureResume } from './resume.js'
import { measureManyFiles, measureQueue } from './scale.js'
import { FULL, QUICK } from './settings.js'
import { measureCappedThroughput, measureMemory, measureThroughput } from './throughput.js'

// `npm run bench` (full) or `npm run bench -- --quick`: every measurement of issue 6 in one run,
// the report on stdout and in bench/results/. Nothing here asserts a speed; a run that cannot
// measure (a failed download, an error under load) exits non-zero. `--cpu-prof` also writes a V8
// CPU profile of every server that downloads in (1) and (2) to bench/results/profiles/ (the
// figures of such a run carry the profiler's cost, so its report goes to profiled.md).
// `--only=throughput,idle,resume,overhead,queue,many-files` runs just those sections (at full size unless --quick)
// and writes them to bench/results/only-<sections>.md, so latest.md only ever holds a whole run.

const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url))

const quick = process.argv.includes('--quick')
const profiled = process.argv.includes('--cpu-prof')
const settings = quick ? QUICK : FULL
const SECTIONS = ['throughput', 'idle', 'resume', 'overhead', 'queue', 'many-files'] as const
type Section = (typeof SECTIONS)[number]
const onlyArg = process.argv.find((arg) => arg.startsWith('--only='))
const only = onlyArg?.slice('--only='.length).split(',').filter((name) => name !== '')
const unknown = only?.filter((name) => !(SECTIONS as readonly string[]).includes(name)) ?? []
if (unknown.length > 0 || only?.length === 0) {
  process.stderr.write(`--only takes some of ${SECTIONS.join(', ')} (got ${onlyArg ?? ''})\n`)
  process.exit(2)
}
// `--rounds=N`: fewer throughput rounds (the capped ones too, at most N), for a comparison on a busy machine.
const roundsText = process.argv.find((arg) => arg.startsWith('--rounds='))?.slice('--rounds='.length)
const roundsArg = roundsText === undefined ? undefined : Number(roundsText)
if (roundsArg !== undefined && !(Number.isInteger(roundsArg) && roundsArg > 0)) {
  process.stderr.write(`--rounds takes a whole number above 0 (got ${roundsText ?? ''})\n`)
  process.exit(2)
}
const profilesDir = join(RESULTS_DIR, 'profiles')
const { workDir, note, cleanUp } = startSession('bench')

const hub = await HubProcess.start()
try {
  const serverNodeArgs = profiled ? ['--cpu-prof', `--cpu-prof-dir=${profilesDir}`] : []
  const wantsPython = only === undefined || only.includes('throughput')
  const python = wantsPython ? findPythonHub(workDir) : { hub: undefined, notes: [] as string[] }
  if (python.hub !== undefined) python.notes.push(`huggingface_hub ${python.hub.version} from ${python.hub.source}`)
  for (const line of python.notes) note(`Python peer: ${line}`)
  const baselineServer = process.env.BENCH_BASELINE_SERVER === '' ? undefined : process.env.BENCH_BASELINE_SERVER
  const rounds = roundsArg === undefined ? settings : { ...settings, throughputRounds: roundsArg, cappedRounds: Math.min(settings.cappedRounds, roundsArg) }
  const ctx: BenchContext = { hub, workDir, settings: rounds, note, serverNodeArgs, python, baselineServer }
  const weights = weightsModel('bench/weights', settings.shardBytes, 10)
  const smallWeights = weightsModel('bench/small-weights', settings.smallShardBytes, 20)
  const cappedWeights = weightsModel('bench/capped-weights', settings.cappedShardBytes, 50, 'capped')
  const tiny = oneFileModel('bench/tiny', { path: 'config.json', bytes: 700, lfs: false }, 30)
  // Below the part size, so each comes down as one (slow) stream.
  const blockers = [1, 2].map((n) => oneFileModel(`bench/blocker-${n}`, { path: 'blocker.safetensors', bytes: 8 * 1024 * 1024, lfs: true }, 40 + n))
  const queued = Array.from({ length: settings.queuedJobs }, (_, i) => oneFileModel(`bench/queued-${String(i).padStart(4, '0')}`, { path: 'config.json', bytes: 700, lfs: false }, 1000 + i))
  const manyFiles = manyFilesModel('bench/many-files', settings.manyFiles)
  note(`${quick ? 'quick' : 'full'} run in ${workDir}; the fake Hub hashes its files`)
  if (only !== undefined) await runSections(ctx, only as Section[], { weights, cappedWeights, tiny, blockers, queued, manyFiles }, python.notes)
  else await runAll(ctx, { weights, smallWeights, cappedWeights, tiny, blockers, queued, manyFiles }, python.notes)
} finally {
  await hub.stop()
  cleanUp()
}
// Keep-alive sockets of the API client would hold the process open.
process.exit(0)

async function runAll (ctx: BenchContext, models: SectionModels & { smallWeights: BenchModel }, pythonNotes: string[]): Promise<void> {
  const { weights, smallWeights, cappedWeights, tiny, blockers, queued, manyFiles } = models
  await ctx.hub.addModels([weights, smallWeights, cappedWeights, tiny, ...blockers, ...queued, manyFiles])

  const throughput = await measureThroughput(ctx, weights)
  const capped = await measureCappedThroughput(ctx, cappedWeights, settings.capBytesPerSecond)
  const memory = await measureMemory(ctx, smallWeights)
  const idle = await measureIdleMemory(ctx, settings.idleRounds)
  const resume = await measureResume(ctx, weights)
  const overhead = await measureOverhead(ctx, tiny)
  const underDownload = await measureOverheadDuringDownload(ctx, weights)
  const queue = await measureQueue(ctx, blockers, queued)
  const many = await measureManyFiles(ctx, manyFiles)

  const measured = { throughput, capped, memory, pythonNotes, idle, resume, overhead, underDownload, queue, manyFiles: many }
  const report = renderReport({ machine: describeMachine(), settings, ...measured })
  process.stdout.write(`${report}\n`)
  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = join(RESULTS_DIR, profiled ? 'profiled.md' : quick ? 'quick.md' : 'latest.md')
  writeFileSync(file, report)
  note(`done; written to ${file}`)
  if (profiled) note(`CPU profiles in ${profilesDir}; summarize one with: node dist/bench/profile-summary.js FILE.cpuprofile`)
}

interface SectionModels {
  weights: BenchModel
  cappedWeights: BenchModel
  tiny: BenchModel
  blockers: BenchModel[]
  queued: BenchModel[]
  manyFiles: BenchModel
}

/** Some sections alone, each rendered as in the full report, to their own file. */
async function runSections (ctx: BenchContext, sections: Section[], models: SectionModels, pythonNotes: string[]): Promise<void> {
  const wants = (section: Section): boolean => sections.includes(section)
  await ctx.hub.addModels([
    ...(wants('resume') || wants('throughput') ? [models.weights] : []),
    ...(wants('throughput') ? [models.cappedWeights] : []),
    ...(wants('overhead') ? [models.tiny] : []),
    ...(wants('queue') ? [...models.blockers, ...models.queued] : []),
    ...(wants('many-files') ? [models.manyFiles] : [])
  ])
  const parts = [
    `# modeldepot benchmarks (${sections.join(', ')} only, ${quick ? 'quick' : 'full'} sizes)`,
    '',
    machineLine(describeMachine()),
    ''
  ]
  if (wants('throughput')) {
    const throughput = await measureThroughput(ctx, models.weights)
    const capped = await measureCappedThroughput(ctx, models.cappedWeights, settings.capBytesPerSecond)
    parts.push(throughputSection({ settings, throughput, capped, pythonNotes }))
  }
  if (wants('idle')) parts.push(idleSection(await measureIdleMemory(ctx, settings.idleRounds)))
  if (wants('resume')) parts.push(resumeSection({ settings, resume: await measureResume(ctx, models.weights) }))
  if (wants('overhead')) parts.push(overheadSection({ settings, overhead: await measureOverhead(ctx, models.tiny) }))
  if (wants('queue') || wants('many-files')) {
    const queue = wants('queue') ? await measureQueue(ctx, models.blockers, models.queued) : []
    const manyFiles = wants('many-files') ? await measureManyFiles(ctx, models.manyFiles) : { latencies: [], downloadSeconds: Number.NaN }
    parts.push(scaleSection({ settings, queue, manyFiles }), '')
  }
  const report = parts.join('\n')
  process.stdout.write(`${report}\n`)
  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = join(RESULTS_DIR, `only-${sections.join('-')}${quick ? '-quick' : ''}.md`)
  writeFileSync(file, report)
  ctx.note(`done; written to ${file}`)
}
