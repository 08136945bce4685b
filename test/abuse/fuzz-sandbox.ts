import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { writeCachedSnapshot } from '../helpers/hf-cache.js'
import { providersAndApp, type ProvidersAndApp } from '../helpers/providers.js'
import { snapshotTree, type TreeSnapshot } from '../helpers/tree-snapshot.js'

export interface FuzzSandbox extends ProvidersAndApp {
  /** Everything the app may touch lives under here; `cacheDir` is the only part it may change. */
  root: string
  cacheDir: string
  /** The sandbox as it is now, the cache and STATE_DIR left out. */
  snapshot: () => TreeSnapshot
}

/**
 * The app with the fake Hub and providers, its cache at `{root}/hf-home/hub` through HF_HOME as a
 * user would set it, and canaries around it that a path trick would reach first: a cache-shaped
 * folder one level up (`hub/..` holds `models--org--tiny`), the Hub token file huggingface_hub keeps
 * in HF_HOME, a folder of files beside it, and the working directory.
 */
export async function fuzzSandbox (t: Test, env: Record<string, string> = {}): Promise<FuzzSandbox> {
  const root = mkdtempSync(join(tmpdir(), 'modeldepot-fuzz-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const hfHome = join(root, 'hf-home')
  const cacheDir = join(hfHome, 'hub')
  mkdirSync(cacheDir, { recursive: true })
  // modeldepot's own state (STATE_DIR, by default $HF_HOME/modeldepot) is, like the cache, its to write.
  const stateDir = join(hfHome, 'modeldepot')
  mkdirSync(stateDir)
  writeFileSync(join(hfHome, 'token'), 'hf_canary_token_not_to_be_touched')
  const canaryModel = [{ path: 'config.json', content: '{"canary":true}' }, { path: 'model.safetensors', content: 'canary weights', lfs: true }]
  writeCachedSnapshot(hfHome, 'org/tiny', '1'.repeat(40), canaryModel, ['main'])
  writeCachedSnapshot(root, 'org/tiny', '1'.repeat(40), canaryModel, ['main'])
  mkdirSync(join(root, 'canary', 'dir'), { recursive: true })
  writeFileSync(join(root, 'canary', 'secret.txt'), 'canary')
  writeFileSync(join(root, 'canary', 'dir', 'nested.txt'), 'canary')
  mkdirSync(join(root, 'home'))
  // Something to delete from the start (downloads add more as the run goes).
  writeCachedSnapshot(cacheDir, 'org/tiny', '1'.repeat(40), [{ path: 'config.json', content: '{}' }], ['main'])
  // A relative path written by mistake would land in the working directory: make that the sandbox too.
  const cwd = join(root, 'cwd')
  mkdirSync(cwd)
  const previousCwd = process.cwd()
  process.chdir(cwd)
  t.teardown(() => process.chdir(previousCwd))

  const built = await providersAndApp(t, {
    HF_HOME: hfHome,
    HF_HUB_CACHE: '',
    HOME: join(root, 'home'),
    RATE_LIMIT_PER_MINUTE: '1000000',
    // Callbacks on, to a port where nothing listens: a download with a plausible callback_url starts,
    // and its one delivery attempt fails without reaching anything.
    CALLBACK_ALLOWED_HOSTS: '127.0.0.1:9',
    CALLBACK_MAX_ATTEMPTS: '1',
    ...env
  })
  if (built.app.config.hubCacheDir !== cacheDir) throw new Error(`the cache is ${built.app.config.hubCacheDir}, not ${cacheDir}`)
  if (built.app.config.stateDir !== stateDir) throw new Error(`the state is in ${built.app.config.stateDir}, not ${stateDir}`)
  return { ...built, root, cacheDir, snapshot: () => snapshotTree(root, [cacheDir, stateDir]) }
}
