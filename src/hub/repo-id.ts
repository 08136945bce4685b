import { MdValidationError } from '../errors.js'

// Turns a model id and a revision from a request into values that are safe to use as cache paths
// (`models--{org}--{name}/refs/{revision}`) and in Hub URLs. A route calls these first, so a bad
// value is answered with a 400 before anything touches the disk or the network.

/** Bad input from a client: an MdValidationError (400) with its own hint, which the errors plugin answers with. */
export class HubInputError extends MdValidationError {
  // createError's classes take every error of their code for theirs; these are told apart by their chain.
  static override [Symbol.hasInstance] (value: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, value)
  }

  override readonly hint: string
  constructor (message: string, hint: string) {
    super(message)
    this.hint = hint
  }
}

export class RepoIdError extends HubInputError {
  override name = 'RepoIdError'
}

export class RevisionError extends HubInputError {
  override name = 'RevisionError'
}

/** `(got "…")`, escaped and cut short: the value may hold control characters or be huge. */
const shown = (value: string): string =>
  `(got ${JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value)})`

// huggingface_hub utils/_validators.py: REPO_ID_REGEX caps the name at 96 (`[\w\-.]{1,96}`) and leaves
// the namespace unbounded; we cap both parts, so the id is bounded while every Hub id still passes.
const MAX_PART_LENGTH = 96
const MAX_ID_LENGTH = 96
// One part of REPO_ID_REGEX, `\b[\w\-.]+\b`: a word character at each end. Python's `\w` is Unicode;
// we keep to ASCII, which is what the docstring ("[a-zA-Z0-9] or '-', '_', '.'") and the Hub allow.
const REPO_ID_PART = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/
const REPO_ID_CHARS = /^[A-Za-z0-9_.\-/]*$/
const REPO_ID_HINT = 'Use the id shown on the model page at huggingface.co, e.g. "Qwen/Qwen2.5-0.5B-Instruct".'

/** Mirrors huggingface_hub's `validate_repo_id`; returns the id unchanged (nothing is repaired). */
export function validateRepoId (value: unknown, field = 'model_id'): string {
  if (typeof value !== 'string') throw new RepoIdError(`${field} must be a string`, REPO_ID_HINT)
  if (value === '') throw new RepoIdError(`${field} must not be empty`, REPO_ID_HINT)
  const fail = (problem: string, hint = REPO_ID_HINT): never => { throw new RepoIdError(`${field} ${problem} ${shown(value)}`, hint) }
  // `%2e%2e` would become `..` for anything that decodes it again.
  if (value.includes('%')) fail('must not be URL-encoded', 'Send the id unencoded, e.g. "org/name", not "org%2Fname".')
  const parts = value.split('/')
  // validate_repo_id: `repo_id.count("/") > 1` → "must be in the form 'repo_name' or 'namespace/repo_name'".
  if (parts.length > 2 || parts.includes('') || value.includes('\\')) fail('must be "name" or "org/name"')
  if (!REPO_ID_CHARS.test(value)) fail('may only contain letters, digits, "-", "_" and "."')
  // validate_repo_id: `"--" in repo_id or ".." in repo_id`; `--` would also blur `models--org--name`.
  if (value.includes('--') || value.includes('..')) fail('must not contain "--" or ".."')
  if (!parts.every((part) => REPO_ID_PART.test(part))) fail('must not start or end with "-" or ".", on either side of "/"')
  if (parts.some((part) => part.length > MAX_PART_LENGTH)) fail(`is too long: org and name are limited to ${MAX_PART_LENGTH} characters each`)
  // modeldepot's own bound on the whole id (the models issue): it also names a cache folder.
  if (value.length > MAX_ID_LENGTH) fail(`is too long: at most ${MAX_ID_LENGTH} characters`)
  // validate_repo_id: `repo_id.endswith(".git")`.
  if (value.endsWith('.git')) fail('must not end with ".git"')
  return value
}

// huggingface_hub file_download.py: REGEX_COMMIT_HASH = re.compile(r"^[0-9a-f]{40}$")
const COMMIT_HASH = /^[0-9a-f]{40}$/

/** A full commit sha, which the cache uses as a snapshot folder name as it is. */
export const isCommitHash = (revision: string): boolean => COMMIT_HASH.test(revision)

// `git check-ref-format` caps nothing, but file systems cap a name at 255 bytes.
const MAX_REVISION_LENGTH = 255
// git check-ref-format rules 4, 5 and 10: no control characters, space, ~ ^ : ? * [ or \.
const REVISION_FORBIDDEN = /[\p{Cc}\s~^:?*[\\]/u
const REVISION_HINT = 'Use a branch ("main"), a tag ("v1.0"), a Hub ref ("refs/pr/1") or a 40-character commit hash.'

/** A branch, tag, Hub ref or commit hash, by git's ref-name rules (`git check-ref-format
 * --allow-onelevel`). huggingface_hub checks nothing and writes `refs/{revision}`, so `../x` would
 * land outside `refs/`; no part here may start with "." or be empty, so none can. */
export function validateRevision (value: unknown, field = 'revision'): string {
  if (typeof value !== 'string') throw new RevisionError(`${field} must be a string`, REVISION_HINT)
  if (value === '') throw new RevisionError(`${field} must not be empty`, REVISION_HINT)
  const fail = (problem: string): never => { throw new RevisionError(`${field} ${problem} ${shown(value)}`, REVISION_HINT) }
  if (value.length > MAX_REVISION_LENGTH) fail(`is too long: at most ${MAX_REVISION_LENGTH} characters`)
  if (REVISION_FORBIDDEN.test(value)) fail('must not contain whitespace, control characters or any of ~ ^ : ? * [ \\')
  const parts = value.split('/')
  if (parts.includes('')) fail('must not start or end with "/" or contain "//"')
  if (value.includes('..') || parts.some((part) => part.startsWith('.'))) fail('must not contain ".." or a part starting with "."')
  if (parts.some((part) => part.endsWith('.lock'))) fail('must not end with ".lock" (nor may any part)')
  if (value.endsWith('.')) fail('must not end with "."')
  if (value === '@' || value.includes('@{')) fail('must not be "@" or contain "@{"')
  return value
}
