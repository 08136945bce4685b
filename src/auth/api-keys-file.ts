import { readFileSync } from 'node:fs'
import { keyDigest, type ApiKeyEntry } from './api-keys.js'
import { broadest, isScope, SCOPES, type Scope } from './scopes.js'

/**
 * API_KEYS_FILE cannot be used. The message names the file, the entry and the field, and never
 * shows a key: it goes to stderr at start-up and to the log on a reload.
 */
export class ApiKeysFileError extends Error {
  override name = 'ApiKeysFileError'
}

/** The keys of API_KEYS_FILE, and those written as plain keys (for the logs to hide). */
export interface ApiKeysFile {
  entries: ApiKeyEntry[]
  plainKeys: string[]
}

// Names show in log lines and error bodies: kept to characters harmless in both.
const NAME = /^[A-Za-z0-9][\w.@:-]{0,63}$/
// What a Bearer token can carry (see bearerToken): a key outside it could never be sent.
const KEY = /^[\x21-\x7e]+$/
const SHA256_HEX = /^[0-9a-fA-F]{64}$/
const ENTRY_FIELDS = new Set(['name', 'key', 'key_sha256', 'scopes'])

/**
 * Reads API_KEYS_FILE: a JSON array of `{name, key | key_sha256, scopes}`. `existing` are the keys
 * already accepted (API_KEY's, named api_key): a file entry may reuse neither their name nor their key.
 */
export function readApiKeysFile (path: string, existing: readonly ApiKeyEntry[] = []): ApiKeysFile {
  const entries = parseJson(path)
  if (!Array.isArray(entries)) throw new ApiKeysFileError(`API_KEYS_FILE ${path} must hold a JSON array of {name, key or key_sha256, scopes}`)
  const accepted: ApiKeyEntry[] = []
  const plainKeys: string[] = []
  entries.forEach((value: unknown, index) => {
    const where = `API_KEYS_FILE entry ${index}`
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ApiKeysFileError(`${where} must be an object`)
    const fields = value as Record<string, unknown>
    const name = fields.name
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new ApiKeysFileError(`${where}: name must be 1-64 letters, digits, ".", "_", "-", "@" or ":", starting with a letter or digit`)
    }
    const problem = (field: string, what: string): ApiKeysFileError => new ApiKeysFileError(`${where} ("${name}"): ${field} ${what}`)
    // A misspelt field (scope for scopes) would otherwise be ignored without a word.
    const unknown = Object.keys(fields).find((field) => !ENTRY_FIELDS.has(field))
    if (unknown !== undefined) throw problem(unknown, `is not a known field (expected ${[...ENTRY_FIELDS].join(', ')})`)
    const earlier = [...existing, ...accepted].find((entry) => entry.name === name)
    if (earlier !== undefined) throw problem('name', 'is used by another key: names must be unique (api_key is the name of the keys in API_KEY)')
    const digest = entryDigest(fields, problem)
    if (typeof fields.key === 'string') plainKeys.push(fields.key)
    const twin = [...existing, ...accepted].find((entry) => entry.digest.equals(digest))
    if (twin !== undefined) throw problem('key', `is the same as the key named "${twin.name}": each key must be different`)
    accepted.push({ name, scope: entryScope(fields.scopes, problem), digest })
  })
  return { entries: accepted, plainKeys }
}

// JSON.parse's message may quote the text around the fault, which may be a key: only where it is, is kept.
function parseJson (path: string): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ApiKeysFileError(`API_KEYS_FILE ${path} cannot be read (${code ?? 'unknown error'})`)
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    const at = /at position \d+(?: \(line \d+ column \d+\))?/.exec((err as Error).message)?.[0]
    throw new ApiKeysFileError(`API_KEYS_FILE ${path} is not valid JSON${at === undefined ? '' : ` (${at})`}`)
  }
}

type Problem = (field: string, what: string) => ApiKeysFileError

function entryDigest (fields: Record<string, unknown>, problem: Problem): Buffer {
  const { key, key_sha256: sha256 } = fields
  if ((key === undefined) === (sha256 === undefined)) throw problem('key', 'or key_sha256 must be given, and only one of them')
  if (key !== undefined) {
    if (typeof key !== 'string' || !KEY.test(key)) throw problem('key', 'must be printable ASCII characters without spaces')
    return keyDigest(key)
  }
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) {
    throw problem('key_sha256', 'must be the SHA-256 of the key in 64 hex digits (printf %s "$KEY" | sha256sum)')
  }
  return Buffer.from(sha256, 'hex')
}

function entryScope (scopes: unknown, problem: Problem): Scope {
  if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every(isScope)) {
    throw problem('scopes', `must be a non-empty array of ${SCOPES.map((scope) => `"${scope}"`).join(', ')}`)
  }
  return broadest(scopes)
}
