import { readFileSync } from 'node:fs'

// `node dist/bench/profile-summary.js FILE.cpuprofile [LONG_MS]`: what a V8 CPU profile of the server
// (`npm run bench -- --cpu-prof`) says in a few lines: where the main thread spent its time, and
// its long stretches without a break (what holds the event loop), with the code they ran.

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number }

const [file, longArg] = process.argv.slice(2)
if (file === undefined) throw new Error('usage: profile-summary.js FILE.cpuprofile [LONG_MS]')
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const longUs = Number(longArg ?? 50) * 1000

const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
const parents = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id)
const nameOf = (id: number): string => {
  const { functionName, url, lineNumber } = nodes.get(id)!.callFrame
  return `${functionName === '' ? '(anonymous)' : functionName} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`
}
/** The nearest caller that is our own code (src/, routes/, plugins/), to say what a sample was for. */
const ownCaller = (id: number | undefined): string => {
  for (; id !== undefined; id = parents.get(id)) {
    const { url } = nodes.get(id)!.callFrame
    if (/\/dist\/(src|routes|plugins)\//.test(url)) return nameOf(id)
  }
  return '(outside modeldepot)'
}
const ms = (us: number): string => `${(us / 1000).toFixed(0)} ms`
const top = (totals: Map<string, number>, count: number): string[] =>
  [...totals].sort((a, b) => b[1] - a[1]).slice(0, count).map(([name, us]) => `${ms(us).padStart(9)}  ${name}`)

const self = new Map<string, number>()
const stretches: Array<{ at: number, us: number, by: Map<string, number> }> = []
let at = profile.startTime
let current: { at: number, us: number, by: Map<string, number> } | undefined
for (let i = 0; i < profile.samples.length; i++) {
  at += profile.timeDeltas[i] ?? 0
  const id = profile.samples[i]!
  const us = profile.timeDeltas[i + 1] ?? 0
  const name = nameOf(id)
  self.set(name, (self.get(name) ?? 0) + us)
  if (name.startsWith('(idle)')) {
    if (current !== undefined && current.us >= longUs) stretches.push(current)
    current = undefined
    continue
  }
  current ??= { at, us: 0, by: new Map() }
  current.us += us
  const caller = `${name}  <  ${ownCaller(id)}`
  current.by.set(caller, (current.by.get(caller) ?? 0) + us)
}
if (current !== undefined && current.us >= longUs) stretches.push(current)

const total = [...self.values()].reduce((sum, us) => sum + us, 0)
console.log(`${file}: ${ms(total)} sampled on the main thread`)
console.log('\nSelf time, top 15:')
for (const line of top(self, 15)) console.log(line)
console.log(`\nStretches of ${ms(longUs)} or more without idle time (${stretches.length}):`)
for (const stretch of stretches) {
  console.log(`  at ${((stretch.at - profile.startTime) / 1e6).toFixed(2)} s for ${ms(stretch.us)}:`)
  for (const line of top(stretch.by, 3)) console.log(`    ${line}`)
}
