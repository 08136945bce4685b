import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { REPO_ROOT, repoFile } from '../helpers/repo-root.js'

const run = promisify(execFile)
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

// Route handlers are typed by their own schemas (FastifyPluginAsyncTypebox): a handler that reads a
// field its schema does not declare does not compile. Checked on a real route file, copied with one
// such mistake: tsc must name exactly that mistake, and nothing else in the file.
t.test('tsc rejects a handler that reads a path parameter its schema does not declare', async (t) => {
  const dir = t.testdir()
  const fromFixture = relative(dir, REPO_ROOT)
  const source = await readFile(repoFile('routes/downloads.ts'), 'utf8')
  const declared = 'app.downloads.get(request.params.job_id)'
  t.ok(source.includes(declared), 'the route reads its declared job_id parameter')
  const mistaken = source
    .replace(declared, 'app.downloads.get(request.params.jobId)')
    .replaceAll("from '../", `from '${fromFixture}/`)
    .replaceAll("from './", `from '${fromFixture}/routes/`)
  const file = join(dir, 'downloads.ts')
  await writeFile(file, mistaken)

  const flags = ['--noEmit', '--strict', '--noUncheckedIndexedAccess', '--skipLibCheck', '--target', 'es2023', '--module', 'nodenext', '--types', 'node']
  // src/app.ts brings the decorators (app.downloads, app.config) that the plugins declare.
  const output = await run(process.execPath, [tsc, ...flags, file, repoFile('src/app.ts')]).then(() => '', (err: { stdout?: string }) => String(err.stdout))
  const errors = output.split('\n').filter((line) => / error TS\d+:/.test(line))
  t.equal(errors.length, 1, errors.length === 1 ? 'one error, the mistake' : `not one error:\n${output}`)
  t.match(errors[0], /downloads\.ts\(\d+,\d+\): error TS\d+: Property 'jobId' does not exist on type '\{ job_id: string; \}'/)
})
