import { constants } from 'node:fs'
import { access, mkdir, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'

export interface CacheDirEnv {
  STATE_DIR?: string | undefined
  HF_HUB_CACHE?: string | undefined
  HUGGINGFACE_HUB_CACHE?: string | undefined
  HF_HOME?: string | undefined
  XDG_CACHE_HOME?: string | undefined
  HOME: string
  [name: string]: unknown
}

/**
 * The model cache directory, resolved exactly as huggingface_hub's constants.py does, so that
 * transformers, vLLM and TGI read the same volume:
 * HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE (legacy), else $HF_HOME/hub,
 * else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
 */
export function resolveHubCacheDir (env: CacheDirEnv): string {
  const expand = (path: string): string => expandVars(expandUser(path, env.HOME), env)
  const hfHome = expand(env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(env.HOME, '.cache'), 'huggingface'))
  return expand(env.HF_HUB_CACHE ?? env.HUGGINGFACE_HUB_CACHE ?? join(hfHome, 'hub'))
}

/**
 * modeldepot's own state (jobs journal, default model, blocks), kept out of the hub cache so that
 * huggingface_hub's scan_cache_dir() finds nothing there but repos and `.locks`: STATE_DIR, else
 * `$HF_HOME/modeldepot` when HF_HOME is set, else a `modeldepot` folder beside the cache when
 * HF_HUB_CACHE (or its legacy name) alone is set, else `modeldepot` in the derived HF home.
 */
export function resolveStateDir (env: CacheDirEnv): string {
  const expand = (path: string): string => expandVars(expandUser(path, env.HOME), env)
  if (env.STATE_DIR !== undefined) return expand(env.STATE_DIR)
  const hubCache = env.HF_HUB_CACHE ?? env.HUGGINGFACE_HUB_CACHE
  if (env.HF_HOME === undefined && hubCache !== undefined) return join(dirname(expand(hubCache)), 'modeldepot')
  return join(expand(env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(env.HOME, '.cache'), 'huggingface')), 'modeldepot')
}

// Python's os.path.expanduser for the current user: only a leading "~" or "~/".
function expandUser (path: string, home: string): string {
  if (path === '~') return home
  if (path.startsWith('~/')) return join(home, path.slice(2))
  return path
}

// Python's os.path.expandvars: $NAME and ${NAME}; unknown variables stay as written.
function expandVars (path: string, env: Record<string, unknown>): string {
  return path.replace(/\$(\w+)|\$\{([^}]+)\}/g, (whole, bare: string | undefined, braced: string | undefined) => {
    const value = env[bare ?? braced ?? '']
    return typeof value === 'string' ? value : whole
  })
}

export type CacheDirCheck = { ok: true } | { ok: false, reason: string }

/**
 * Can the model cache directory be created and written? Readiness depends on it. Asked of the
 * directory itself (access(2) with W_OK, which also answers EROFS on a read-only mount) rather than
 * by writing a probe file: nothing of modeldepot's may appear in the hub cache root, not even for a
 * moment (huggingface_hub's scan_cache_dir warns about every entry it does not know, issue 17).
 */
export async function checkCacheDirWritable (dir: string): Promise<CacheDirCheck> {
  try {
    await mkdir(dir, { recursive: true })
    if (!(await stat(dir)).isDirectory()) return notWritable('ENOTDIR')
    await access(dir, constants.W_OK | constants.X_OK)
    return { ok: true }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error'
    // mkdir -p of a path that is a file: it exists, but not as a directory.
    return notWritable(code === 'EEXIST' ? 'ENOTDIR' : code)
  }
}

const notWritable = (code: string): CacheDirCheck => ({ ok: false, reason: `the model cache directory cannot be created or written (${code})` })
