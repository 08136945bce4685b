// Loaded into the real server with `--import` by tests that stop it at an exact point of a download,
// as a power cut or the OOM killer would: the first time the server calls the file-system function
// named in MODELDEPOT_TEST_KILL_AT with an argument that matches, the process SIGKILLs itself before
// the call runs. Nothing else changes: the server runs its own code to that point.
//   MODELDEPOT_TEST_KILL_AT='{"fn":"rename","arg":1,"match":"/refs/main$"}'
import fs from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'

const { fn, arg, match } = JSON.parse(process.env.MODELDEPOT_TEST_KILL_AT ?? '{}')
if (typeof fn !== 'string' || !Number.isInteger(arg) || typeof match !== 'string') {
  throw new Error('MODELDEPOT_TEST_KILL_AT must be {"fn": name, "arg": index, "match": regex}')
}
const pattern = new RegExp(match)
const killIfMatches = (args) => {
  if (typeof args[arg] === 'string' && pattern.test(args[arg])) process.kill(process.pid, 'SIGKILL')
}
// Both forms: the server uses fs/promises, write-file-atomic the callback API.
for (const api of [fs.promises, fs]) {
  const original = api[fn]
  api[fn] = function (...args) {
    killIfMatches(args)
    return original.apply(this, args)
  }
}
syncBuiltinESMExports()
