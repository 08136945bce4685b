import { createHash } from 'node:crypto'
import { GeneratedContent } from './generated-content.js'

// The repositories a FakeHub serves, stored the way the Hub stores them: git objects for the tree,
// LFS files as a small pointer in git with their bytes addressed by sha256.

export interface FakeFile {
  path: string
  content: Buffer | string
  lfs?: boolean
  /** The size the Hub lists instead of the content's, for a file too big for any test disk (its bytes cannot be fetched). */
  listedSize?: number
}
/** An LFS file whose bytes are generated on demand, for sizes no test should hold in memory (benchmarks). */
export interface GeneratedFile { path: string, content: GeneratedContent, lfs: true }
export interface FakeRevision { commit: string, files: Array<FakeFile | GeneratedFile> }
export interface FakeRepoSpec {
  id: string
  revisions: Record<string, FakeRevision>
  gated?: false | 'auto' | 'manual'
  private?: boolean
  allowedTokens?: string[]
  // What the Hub shows about the model; not part of the brief's spec, optional so specs stay small.
  pipelineTag?: string
  libraryName?: string
  tags?: string[]
  // What the model listing sorts and filters by; a disabled repo is left out of it.
  likes?: number
  downloads?: number
  createdAt?: string
  disabled?: boolean
}

export interface TreeEntry {
  type: 'file' | 'directory'
  oid: string
  size: number
  path: string
  lfs?: { oid: string, size: number, pointerSize: number }
  lastCommit?: { id: string, title: string, date: string }
  securityFileStatus?: { status: string }
}

/** What a file's bytes can be: in memory, or generated range by range. Both have `length` and `subarray`. */
export type FileBytes = Buffer | GeneratedContent

export interface StoredFile {
  path: string
  content: FileBytes
  listedSize?: number
  /** git blob sha1 of what git holds: the content, or the LFS pointer. */
  oid: string
  lfs?: { sha256: string, pointer: Buffer }
}

export interface StoredRevision { name: string, commit: string, files: Map<string, StoredFile> }

/** Every date the fake reports, fixed so responses are reproducible. */
export const FAKE_DATE = '2024-05-01T12:00:00.000Z'

export function gitBlobSha1 (content: Buffer | string): string {
  const bytes = Buffer.from(content)
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex')
}

export function sha256Hex (content: Buffer | string): string {
  return createHash('sha256').update(content).digest('hex')
}

export function lfsPointer (sha256: string, size: number): Buffer {
  return Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`)
}

export class StoredRepo {
  readonly spec: FakeRepoSpec
  /** By branch/tag name and by commit sha, since the Hub takes either as a revision. */
  private readonly revisions = new Map<string, StoredRevision>()
  private readonly defaultBranch: string
  private readonly listings = new Map<string, TreeEntry[] | undefined>()

  constructor (spec: FakeRepoSpec) {
    this.spec = spec
    for (const [name, revision] of Object.entries(spec.revisions)) {
      if (!/^[0-9a-f]{40}$/.test(revision.commit)) throw new Error(`commit of ${spec.id}@${name} must be 40 hex`)
      const stored: StoredRevision = { name, commit: revision.commit, files: new Map() }
      for (const file of revision.files) stored.files.set(file.path, storeFile(file))
      this.revisions.set(name, stored)
      if (!this.revisions.has(revision.commit)) this.revisions.set(revision.commit, stored)
    }
    this.defaultBranch = 'main' in spec.revisions ? 'main' : Object.keys(spec.revisions)[0] ?? 'main'
  }

  get id (): string { return this.spec.id }

  /** "HEAD" is what @huggingface/hub's modelInfo asks for when no revision is given: the default branch. */
  revision (name: string): StoredRevision | undefined {
    return this.revisions.get(name === 'HEAD' ? this.defaultBranch : name)
  }

  allows (token: string | undefined): boolean {
    return token !== undefined && (this.spec.allowedTokens ?? []).includes(token)
  }

  /** Every distinct blob across revisions, as the Hub's `usedStorage` counts it. */
  usedStorage (): number {
    const sizes = new Map<string, number>()
    for (const revision of this.revisions.values()) {
      for (const file of revision.files.values()) sizes.set(file.lfs?.sha256 ?? file.oid, file.content.length)
    }
    return [...sizes.values()].reduce((sum, size) => sum + size, 0)
  }

  /** Every field of GET /api/models/{id}; `blobs` adds what ?blobs=true adds to each sibling. */
  modelInfo (revision: StoredRevision, blobs: boolean): Record<string, unknown> {
    const files = [...revision.files.values()].sort((a, b) => (a.path < b.path ? -1 : 1))
    return {
      _id: createHash('sha1').update(this.id).digest('hex').slice(0, 24),
      id: this.id,
      modelId: this.id,
      author: this.id.includes('/') ? this.id.split('/')[0] : undefined,
      sha: revision.commit,
      lastModified: FAKE_DATE,
      createdAt: this.spec.createdAt ?? FAKE_DATE,
      private: this.spec.private ?? false,
      disabled: this.spec.disabled ?? false,
      gated: this.spec.gated ?? false,
      downloads: this.spec.downloads ?? 0,
      likes: this.spec.likes ?? 0,
      tags: this.spec.tags ?? [],
      pipeline_tag: this.spec.pipelineTag,
      library_name: this.spec.libraryName,
      siblings: files.map((file) => (blobs ? siblingWithBlob(file) : { rfilename: file.path })),
      spaces: [],
      usedStorage: this.usedStorage()
    }
  }

  /** The entry the tree and paths-info APIs describe for a file or a directory, undefined if neither. */
  entry (revision: StoredRevision, path: string, expand: boolean): TreeEntry | undefined {
    const file = revision.files.get(path)
    const base: TreeEntry | undefined = file
      ? {
          type: 'file',
          oid: file.oid,
          size: file.listedSize ?? file.content.length,
          path,
          ...(file.lfs && { lfs: { oid: file.lfs.sha256, size: file.listedSize ?? file.content.length, pointerSize: file.lfs.pointer.length } })
        }
      : directoryEntry(revision, path)
    if (!base || !expand) return base
    // The fake has no history, so the last commit to touch any path is the revision's own commit.
    const lastCommit = { id: revision.commit, title: `Upload ${path}`, date: FAKE_DATE }
    return { ...base, lastCommit, ...(base.type === 'file' && { securityFileStatus: { status: 'safe' } }) }
  }

  /** Children of `dir` ('' for the root), or everything below it when recursive; undefined if no such directory. */
  list (revision: StoredRevision, dir: string, recursive: boolean, expand: boolean): TreeEntry[] | undefined {
    // A revision never changes, and the tree API asks again for every page: list it once.
    const key = JSON.stringify([revision.name, dir, recursive, expand])
    if (!this.listings.has(key)) this.listings.set(key, this.computeList(revision, dir, recursive, expand))
    return this.listings.get(key)
  }

  private computeList (revision: StoredRevision, dir: string, recursive: boolean, expand: boolean): TreeEntry[] | undefined {
    const prefix = dir === '' ? '' : `${dir}/`
    if (dir !== '' && !directoryEntry(revision, dir)) return undefined
    const paths = new Set<string>()
    for (const filePath of revision.files.keys()) {
      if (!filePath.startsWith(prefix)) continue
      const parts = filePath.slice(prefix.length).split('/')
      const depth = recursive ? parts.length : 1
      for (let i = 1; i <= depth; i++) paths.add(prefix + parts.slice(0, i).join('/'))
    }
    return [...paths].sort().map((path) => this.entry(revision, path, expand)).filter((e) => e !== undefined)
  }
}

function storeFile (file: FakeFile | GeneratedFile): StoredFile {
  if (isGenerated(file)) {
    const { sha256, length } = file.content
    const pointer = lfsPointer(sha256, length)
    return { path: file.path, content: file.content, oid: gitBlobSha1(pointer), lfs: { sha256, pointer } }
  }
  const content = Buffer.from(file.content)
  const listed = file.listedSize === undefined ? {} : { listedSize: file.listedSize }
  if (!file.lfs) return { path: file.path, content, ...listed, oid: gitBlobSha1(content) }
  const sha256 = sha256Hex(content)
  const pointer = lfsPointer(sha256, file.listedSize ?? content.length)
  return { path: file.path, content, ...listed, oid: gitBlobSha1(pointer), lfs: { sha256, pointer } }
}

function isGenerated (file: FakeFile | GeneratedFile): file is GeneratedFile {
  return file.content instanceof GeneratedContent
}

function siblingWithBlob (file: StoredFile): Record<string, unknown> {
  const lfs = file.lfs && { sha256: file.lfs.sha256, size: file.content.length, pointerSize: file.lfs.pointer.length }
  return { rfilename: file.path, blobId: file.oid, size: file.content.length, ...(lfs && { lfs }) }
}

function directoryEntry (revision: StoredRevision, dir: string): TreeEntry | undefined {
  const below = [...revision.files.values()].filter((f) => f.path.startsWith(`${dir}/`))
  if (dir === '' || below.length === 0) return undefined
  // Not git's real tree hash, but like it depends only on what the directory holds.
  const oid = createHash('sha1').update(below.map((f) => `${f.path}:${f.oid}`).sort().join('\n')).digest('hex')
  return { type: 'directory', oid, size: 0, path: dir }
}
