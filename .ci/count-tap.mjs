// Prints "N passed, N failed" from the raw TAP that `npm test` saves (tap's output-file), counting
// real assertions: subtest summaries are not counted again, but a subtest that failed without a
// failing assertion (a crash, a timeout, a missing plan) counts as one failure. Several files (one
// run per Node version, and the n8n examples' run) are summed; a missing one counts as a failure.
// Each failure is named (its file, its subtests) above the count, so that the last lines of a CI log
// say which test failed.
import { createReadStream, existsSync } from 'node:fs'
import { Parser } from 'tap-parser'

const files = process.argv.length > 2 ? process.argv.slice(2) : ['.tap/results.tap']
const totals = { passed: 0, failed: 0 }
const failures = []
let currentFile = ''

function watch (parser) {
  const subtree = { failed: 0 }
  let endedChild = null
  parser.on('child', (child) => { endedChild = watch(child) })
  parser.on('assert', (result) => {
    if (endedChild !== null) {
      if (!result.ok && !result.todo && endedChild.failed === 0) {
        totals.failed++
        subtree.failed++
        failures.push(`${currentFile}: ${result.fullname}`)
      }
      subtree.failed += endedChild.failed
      endedChild = null
      return
    }
    if (result.skip) return
    if (result.ok || result.todo) totals.passed++
    else {
      totals.failed++
      subtree.failed++
      failures.push(`${currentFile}: ${result.fullname}`)
    }
  })
  return subtree
}

const missing = files.filter((file) => !existsSync(file))
if (missing.length > 0) {
  console.log(`no test results were written: ${missing.join(', ')}`)
  console.log('0 passed, 1 failed')
  process.exit(1)
}

async function count (file) {
  currentFile = file
  const parser = new Parser()
  watch(parser)
  const done = new Promise((resolve) => parser.on('complete', resolve))
  createReadStream(file).pipe(parser)
  await done
}

for (const file of files) await count(file)
for (const failure of failures) console.log(`not ok: ${failure}`)
console.log(`${totals.passed} passed, ${totals.failed} failed`)
process.exit(totals.failed > 0 ? 1 : 0)
