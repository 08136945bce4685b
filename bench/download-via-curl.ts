import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import type { BenchModel } from './bench-models.js'
import { checkFiles } from './hf-cache-check.js'

export interface CurlRun { seconds: number, fsyncSeconds: number, hashSeconds: number }

/**
 * The baseline of what the machine can do: one curl fetching every file at once, each over its own
 * connection, straight to disk (following the Hub's redirect to its CDN; no hashing, no fsync).
 * Then, timed apart, `sync` of those files: what the same bytes cost made durable, as modeldepot
 * makes every blob before it names it; and `sha256sum` of the large ones, one process per file, all
 * at once (from the page cache): what checking every byte costs on this machine's cores, as
 * modeldepot checks every LFS file against its sha256.
 */
export async function downloadViaCurl (dir: string, hubUrl: string, model: BenchModel): Promise<CurlRun> {
  const args = ['--silent', '--show-error', '--fail', '--location', '--create-dirs', '--parallel', '--parallel-immediate', '--parallel-max', String(model.files.length)]
  for (const file of model.files) args.push('--output', join(dir, file.path), `${hubUrl}/${model.id}/resolve/${model.commit}/${file.path}`)
  const started = performance.now()
  const curl = spawn('curl', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  curl.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const [code] = await Promise.race([once(curl, 'exit'), once(curl, 'error').then(([err]) => { throw err })]) as [number | null]
  const seconds = (performance.now() - started) / 1000
  if (code !== 0) throw new Error(`curl exited ${String(code)}: ${stderr}`)
  const paths = model.files.map((file) => join(dir, file.path))
  const syncStarted = performance.now()
  // GNU sync with file arguments fsyncs just those files.
  const sync = spawnSync('sync', paths, { stdio: 'ignore' })
  if (sync.status !== 0) throw new Error(`sync of curl's files failed (${String(sync.status ?? sync.error)})`)
  const fsyncSeconds = (performance.now() - syncStarted) / 1000
  const hashStarted = performance.now()
  await Promise.all(model.files.filter((file) => file.lfs).map(async (file) => sha256sum(join(dir, file.path))))
  const hashSeconds = (performance.now() - hashStarted) / 1000
  checkFiles(model, (path) => join(dir, path))
  return { seconds, fsyncSeconds, hashSeconds }
}

async function sha256sum (path: string): Promise<void> {
  const child = spawn('sha256sum', [path], { stdio: ['ignore', 'ignore', 'inherit'] })
  const [code] = await Promise.race([once(child, 'exit'), once(child, 'error').then(([err]) => { throw err })]) as [number | null]
  if (code !== 0) throw new Error(`sha256sum ${path} exited ${String(code)}`)
}
