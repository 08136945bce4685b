import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'
import { pathToFileURL } from 'node:url'
import { parse } from 'yaml'
import { REPO_ROOT } from './helpers/repo-root.js'

// There is no Docker engine here: these checks read the files the way `docker build` and
// `docker compose` would, and CI lints both (dockerfile-utils, dclint).
const root = pathToFileURL(`${REPO_ROOT}/`)
const read = (file: string): string => readFileSync(new URL(file, root), 'utf8')
const dockerfile = read('Dockerfile')
const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
const instruction = (name: string, text: string = runtimeStage): string[] =>
  text.replace(/\\\n\s*/g, ' ').split('\n').filter((line) => line.startsWith(`${name} `)).map((line) => line.slice(name.length + 1).trim())

t.test('the image starts the same build output that `npm start` runs', async (t) => {
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> }
  const cmd = JSON.parse(instruction('CMD').at(-1) ?? '[]') as string[]
  t.same(cmd, pkg.scripts.start?.split(' '), 'CMD and the start script are the same command')
  const script = cmd.at(-1) ?? 'missing'
  t.ok(existsSync(new URL(script, root)), `${script} is what the build produces`)
  t.ok(cmd.slice(1, -1).every((word) => word.startsWith('--')), 'node, its flags, then the script')
  t.match(instruction('COPY').join('\n'), /--from=build \/app\/dist \.\/dist/, 'the runtime stage copies the build output')
})

t.test('the image is multi-stage, slim, non-root, with a health check and the model volume', async (t) => {
  const stages = instruction('FROM', dockerfile)
  t.equal(stages.length, 2)
  for (const stage of stages) t.match(stage, /^node:\d+-slim /, 'a Node slim image')
  t.match(instruction('RUN').join('\n'), /npm ci --omit=dev/, 'production dependencies only')
  t.equal(instruction('USER')[0], 'node', 'runs as the non-root node user')
  t.equal(instruction('EXPOSE')[0], '8787')
  t.match(instruction('ENV').join(' '), /HF_HOME=\/data\/huggingface/)
  t.same(instruction('VOLUME'), ['["/data/huggingface"]'])
  t.match(instruction('HEALTHCHECK')[0], /CMD .*\/health/)
})

t.test('compose runs modeldepot on a volume, and n8n under a profile on the same network', async (t) => {
  const compose = parse(read('docker-compose.yml')) as {
    services: Record<string, {
      build?: unknown
      image?: string
      env_file?: string[]
      volumes?: string[]
      restart?: string
      healthcheck?: { test: string[] }
      networks?: string[]
      profiles?: string[]
      depends_on?: Record<string, unknown>
      environment?: Record<string, string>
    }>
    volumes: Record<string, unknown>
  }
  const api = compose.services.modeldepot
  t.ok(api?.build, 'built from this repository')
  t.same(api?.env_file, ['.env'])
  t.ok(api?.volumes?.includes('models:/data/huggingface'), 'the model cache is a named volume')
  t.equal(api?.environment?.HF_HOME, '/data/huggingface')
  t.equal(api?.restart, 'unless-stopped')
  t.match(api?.healthcheck?.test.join(' '), /\/health/)
  t.ok('models' in compose.volumes)

  const n8n = compose.services.n8n
  t.same(n8n?.profiles, ['n8n'])
  t.same(n8n?.networks, api?.networks, 'on the same network')
  t.equal(n8n?.environment?.MODELDEPOT_URL, 'http://modeldepot:8787', 'n8n reaches the API by its service name')
  t.match(n8n?.depends_on, { modeldepot: { condition: 'service_healthy' } })
  // n8n builds $execution.resumeUrl from N8N_WEBHOOK_URL: modeldepot must be allowed to call it back there.
  const resumeHost = new URL(n8n?.environment?.N8N_WEBHOOK_URL ?? 'http://unset').host
  t.equal(resumeHost, 'n8n:5678', 'resume URLs name the n8n service')
  t.ok(api?.environment?.CALLBACK_ALLOWED_HOSTS?.split(',').map((host) => host.trim()).includes(resumeHost), 'and callbacks to it are allowed')
})

t.test('compose has a replicas profile: Redis 7 with appendonly, and two replicas on one cache volume', async (t) => {
  const compose = parse(read('docker-compose.yml')) as {
    services: Record<string, {
      image?: string
      command?: string[]
      volumes?: string[]
      profiles?: string[]
      environment?: Record<string, string>
      depends_on?: Record<string, unknown>
    }>
  }
  const redis = compose.services.redis
  t.match(redis?.image, /^redis:7/, 'Redis 7')
  t.same(redis?.profiles, ['replicas'])
  t.match(redis?.command?.join(' '), /--appendonly yes/, 'with persistence: queued jobs survive a Redis restart')
  const replicas = Object.entries(compose.services).filter(([name]) => name.startsWith('replica-'))
  t.equal(replicas.length, 2, 'two replicas')
  for (const [name, replica] of replicas) {
    t.same(replica.profiles, ['replicas'], `${name} is in the profile`)
    t.ok(replica.volumes?.includes('models:/data/huggingface'), `${name} mounts the one cache volume`)
    t.equal(replica.environment?.REDIS_URL, 'redis://redis:6379', `${name} shares the Redis`)
    t.match(replica.depends_on, { redis: { condition: 'service_healthy' } })
  }
})
