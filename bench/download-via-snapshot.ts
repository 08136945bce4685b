import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { BenchModel } from './bench-models.js'
import { checkFiles, snapshotFileOf } from './hf-cache-check.js'

const CHILD = fileURLToPath(new URL('./snapshot-download-child.js', import.meta.url))

/** `snapshotDownload` of @huggingface/hub into its own cache directory, timed around the call. */
export async function downloadViaSnapshot (dir: string, hubUrl: string, model: BenchModel): Promise<{ seconds: number, peakRssBytes: number }> {
  const child = spawn(process.execPath, [CHILD, hubUrl, model.id, dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0) throw new Error(`snapshotDownload exited ${String(code)}: ${stderr}`)
  checkFiles(model, (path) => snapshotFileOf(dir, model, path))
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as { seconds: number, peakRssBytes: number }
}
