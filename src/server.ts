import { existsSync } from 'node:fs'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { serverTimeoutOptions } from './server-timeouts.js'

// Node reads NODE_EXTRA_CA_CERTS once, as the process starts: one that only .env sets comes too late.
const extraCaCertsAtStart = process.env.NODE_EXTRA_CA_CERTS
// A .env file in the working directory fills in what the environment does not set.
if (existsSync('.env')) process.loadEnvFile('.env')

let config
try {
  config = loadConfig(process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`modeldepot: ${err.message}\n`)
  process.exit(1)
}

// Deadlines for slow and idle clients, so none can hold a connection (see server-timeouts.ts). A
// setting the other replicas do not share (REDIS_URL) is found as the app is built.
let app
try {
  app = await buildApp(config, { server: serverTimeoutOptions(config.serverTimeouts) })
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`modeldepot: ${err.message}\n`)
  process.exit(1)
}

if (process.env.NODE_EXTRA_CA_CERTS !== extraCaCertsAtStart) {
  app.log.warn('NODE_EXTRA_CA_CERTS in .env is not used: Node reads it only when it starts; set it in the environment (or the compose file) instead')
}

// With API_KEYS_FILE, SIGHUP reads the keys again instead of shutting down (the file is this
// process's: each replica is signalled on its own). A file that cannot be used keeps the old keys.
const reloadsKeys = config.apiKeysFile !== undefined
if (reloadsKeys) {
  process.on('SIGHUP', () => {
    try {
      app.reloadApiKeys()
    } catch (err) {
      app.log.error({ err }, 'API_KEYS_FILE not reloaded: the keys stay as they were')
    }
  })
}

// On SIGTERM/SIGINT: stop accepting, let in-flight requests finish, exit; give up after the bound.
// app.close() runs every onClose hook: that is where the download engine pauses its jobs.
closeWithGrace({ delay: config.shutdownTimeoutMs, logger: app.log, skip: reloadsKeys ? ['SIGHUP'] : [] }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'shutting down after an uncaught error')
  else app.log.info({ signal }, 'shutting down')
  await app.close()
})

try {
  await app.listen({ port: config.port, host: config.host })
} catch (err) {
  app.log.fatal({ err }, 'could not start listening')
  process.exit(1)
}
