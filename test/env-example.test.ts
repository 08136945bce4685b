import { readFileSync } from 'node:fs'
import t from 'tap'
import { EnvSchema } from '../src/config.js'
import { repoFile } from './helpers/repo-root.js'

// .env.example is where a user learns the settings: it must list every one the server reads.
t.test('.env.example lists every setting, with its default', async (t) => {
  const example = readFileSync(repoFile('.env.example'), 'utf8')
  const listed = new Map([...example.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((match) => [match[1], match[2]]))
  const internal = new Set(['HOME', 'XDG_CACHE_HOME', 'HUGGINGFACE_HUB_CACHE'])
  for (const [name, schema] of Object.entries(EnvSchema.properties as Record<string, { default?: unknown }>)) {
    if (internal.has(name)) continue
    t.ok(listed.has(name), `${name} is listed`)
    if (schema.default !== undefined) t.equal(listed.get(name), String(schema.default), `${name} shows its default`)
  }
})
