import { snapshotDownload } from '@huggingface/hub'

// @huggingface/hub's snapshotDownload in a process of its own, as a script using it would run.
// Prints one JSON line: the seconds the call took and the peak RSS of the process.

const [hubUrl, repo, cacheDir] = process.argv.slice(2)
if (hubUrl === undefined || repo === undefined || cacheDir === undefined) throw new Error('usage: snapshot-download-child.js HUB_URL REPO CACHE_DIR')
// It announces every file with console.debug.
console.debug = () => {}
const started = performance.now()
await snapshotDownload({ repo: { type: 'model', name: repo }, cacheDir, hubUrl })
const seconds = (performance.now() - started) / 1000
process.stdout.write(`${JSON.stringify({ seconds, peakRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`)
