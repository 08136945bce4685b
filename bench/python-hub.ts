import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import type { BenchModel } from './bench-models.js'
import { checkFiles, snapshotFileOf } from './hf-cache-check.js'

// Python huggingface_hub's snapshot_download as a peer of curl and snapshotDownload. pip installs
// huggingface_hub 1.x into a virtual environment of the run (from pip's configured index, with a short
// timeout); where it cannot, BENCH_HF_HUB_PYTHONPATH may name a huggingface_hub source tree (its `src`)
// that BENCH_PYTHON (default /usr/bin/python3) can import, or BENCH_PYTHON alone a Python that has it.
// Without any the bench says why and runs without it; a peer that fails in a round is left out from then on.

const PIP_TIMEOUT_MS = 60_000
// Making a venv is local, but slow on a busy machine.
const VENV_TIMEOUT_MS = 180_000

/** How to start a Python that imports huggingface_hub, and where it came from. */
export interface PythonHub { python: string, env: Record<string, string>, version: string, source: string }

/** What the report says of the Python peer: the peer itself, or why there is none. */
export interface PythonPeer { hub: PythonHub | undefined, notes: string[] }

/** Finds a huggingface_hub 1.x: pip into a venv first, then the tree named by BENCH_HF_HUB_PYTHONPATH. */
export function findPythonHub (workDir: string): PythonPeer {
  const notes: string[] = []
  const venv = join(workDir, 'hf-venv')
  const made = spawnSync('python3', ['-m', 'venv', venv], { encoding: 'utf8', timeout: VENV_TIMEOUT_MS })
  if (made.status === 0) {
    const pip = spawnSync(join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', '--timeout', '10', '--retries', '1', 'huggingface_hub>=1,<2'], { encoding: 'utf8', timeout: PIP_TIMEOUT_MS })
    if (pip.status === 0) {
      const hub = probe(join(venv, 'bin', 'python'), {}, 'pip into a venv')
      if (hub !== undefined) return { hub, notes }
      notes.push('pip installed huggingface_hub, but the venv could not import it')
    } else {
      notes.push(`\`pip install huggingface_hub\` into a venv failed (${firstLine(pip.stderr) ?? (pip.error?.message ?? `exit ${String(pip.status)}`)})`)
    }
  } else {
    notes.push(`\`python3 -m venv\` failed (${firstLine(made.stderr) ?? made.error?.message ?? 'no python3'})`)
  }
  const tree = process.env.BENCH_HF_HUB_PYTHONPATH ?? ''
  const given = process.env.BENCH_PYTHON ?? ''
  if (tree === '' && given === '') {
    notes.push('neither BENCH_HF_HUB_PYTHONPATH nor BENCH_PYTHON is set: Python huggingface_hub is left out of this run')
    return { hub: undefined, notes }
  }
  const python = given === '' ? '/usr/bin/python3' : given
  const source = tree === '' ? `BENCH_PYTHON=${python}` : `the tree in BENCH_HF_HUB_PYTHONPATH (${tree}) with ${python}`
  const hub = probe(python, tree === '' ? {} : { PYTHONPATH: tree }, source)
  if (hub === undefined) notes.push(`${source} cannot import huggingface_hub 1.x: left out of this run`)
  return { hub, notes }
}

function probe (python: string, env: Record<string, string>, source: string): PythonHub | undefined {
  const run = spawnSync(python, ['-c', 'import huggingface_hub; print(huggingface_hub.__version__)'], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 })
  const version = run.stdout?.trim()
  if (run.status !== 0 || version === undefined || !version.startsWith('1.')) return undefined
  return { python, env, version, source }
}

const firstLine = (text: string | null | undefined): string | undefined =>
  text?.split('\n').map((line) => line.trim()).filter((line) => line !== '').at(-1)

// Prints one JSON line, as the snapshotDownload child does: the seconds of the call, the process's peak RSS.
const CHILD = `
import json, resource, sys, time
from huggingface_hub import snapshot_download
started = time.perf_counter()
snapshot_download(repo_id=sys.argv[1], cache_dir=sys.argv[2])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
`

/** `snapshot_download` into its own cache directory (default 8 files at once, no Xet), timed around the call. */
export async function downloadViaPython (hub: PythonHub, dir: string, hubUrl: string, model: BenchModel): Promise<{ seconds: number, peakRssBytes: number }> {
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    HF_HOME: join(dir, 'hf-home'),
    // The fake Hub redirects to its CDN on its own host, which huggingface_hub 1.33 follows (1.9.2 did not) for the
    // file's metadata as if it were the Hub: under another name for the same address the CDN is another host, as it is on the real Hub.
    HF_ENDPOINT: hubUrl.replace('//127.0.0.1:', '//localhost:'),
    HF_HUB_DISABLE_XET: '1',
    HF_HUB_DISABLE_TELEMETRY: '1',
    HF_HUB_DISABLE_PROGRESS_BARS: '1',
    ...hub.env
  }
  const child = spawn(hub.python, ['-c', CHILD, model.id, dir], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const [code] = await Promise.race([once(child, 'exit'), once(child, 'error').then(([err]) => { throw err })]) as [number | null]
  if (code !== 0) throw new Error(`snapshot_download exited ${String(code)}: ${stderr.slice(-2000)}`)
  checkFiles(model, (path) => snapshotFileOf(dir, model, path))
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as { seconds: number, peakRssBytes: number }
}
