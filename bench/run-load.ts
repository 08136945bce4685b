import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { weightsModel } from './bench-models.js'
import { startSession } from './bench-session.js'
import { HubProcess } from './hub-control.js'
import { loadChecks } from './load-checks.js'
import { renderLoadReport } from './load-report.js'
import { FULL_LOAD, QUICK_LOAD } from './load-settings.js'
import { describeMachine } from './machine.js'
import { measurePollingLoad } from './polling-load.js'

// `npm run bench:load` (full: 200 clients for 60 s) or `npm run bench:load -- --quick` (200 clients
// for 15 s; CI runs it): the report on stdout and in bench/results/load.md (load-quick.md). Exits
// non-zero on any failed check: an error answer, a download that ended early, failed or hashed
// wrong, and (full run only) memory growth past the tolerance in load-checks.ts.

const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url))

const settings = process.argv.includes('--quick') ? QUICK_LOAD : FULL_LOAD
const { workDir, note, cleanUp } = startSession('load')

let failed = false
const hub = await HubProcess.start()
try {
  // The shard names are the load's own: the Hub caps their connections by file path, for good.
  const models = Array.from({ length: settings.downloads }, (_, i) => weightsModel(`bench/load-${i + 1}`, settings.shardBytes, 100 + 10 * i, 'load'))
  note(`${settings.quick ? 'quick' : 'full'} run in ${workDir}; the fake Hub hashes its files`)
  await hub.addModels(models)
  const results = await measurePollingLoad({ hub, workDir, note, settings }, models)
  const checks = loadChecks(results)
  const report = renderLoadReport(describeMachine(), results, checks)
  process.stdout.write(`${report}\n`)
  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = join(RESULTS_DIR, settings.quick ? 'load-quick.md' : 'load.md')
  writeFileSync(file, report)
  failed = checks.some((check) => check.pass === false)
  note(`${failed ? 'FAILED' : 'passed'}; written to ${file}`)
} finally {
  await hub.stop()
  cleanUp()
}
// Keep-alive sockets of the API client would hold the process open.
process.exit(failed ? 1 : 0)
