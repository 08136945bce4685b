import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

// One piece of the idle server, then its VmHWM (bytes) on stdout: `node` (Node alone), `modules`
// (the app's modules imported: Fastify, TypeBox, undici, prom-client, Swagger…), `app` (the app
// built and ready: route schemas compiled to validators and serializers). Settled as the server is.
const piece = process.argv[2]
if (piece === 'modules' || piece === 'app') {
  const [{ buildApp }, { loadConfig }] = await Promise.all([import('../src/app.js'), import('../src/config.js')])
  if (piece === 'app') {
    const app = await buildApp(loadConfig(process.env))
    await app.ready()
  }
}
await sleep(2000)
const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
process.stdout.write(`${kb === undefined ? '' : Number(kb) * 1024}\n`)
process.exit(0)
