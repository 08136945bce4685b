import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import writeFileAtomic from 'write-file-atomic'
import { isFinal, type DownloadJob } from './download-job.js'
import type { DownloadRequest } from './download-plan.js'

/** A job that has not ended, with what it takes to start it again. */
export interface UnfinishedEntry { job: DownloadJob, request: DownloadRequest }

export interface JournalContents {
  unfinished: UnfinishedEntry[]
  /** Newest first. */
  finished: DownloadJob[]
}

export interface JournalSettings {
  /** Finished jobs kept, at most… */
  historyMax: number
  /** …and for at most this long after they ended. */
  historyMaxAgeMs: number
}

const VERSION = 1

/**
 * The downloads that must survive a restart, in `{STATE_DIR}/jobs.json`: the request of every
 * job not yet ended (to resume it, callback included) and the recent finished jobs (for the history).
 * Progress is not in it. Written whole on every change of state, atomically (temporary file, fsync,
 * rename) and with mode 0600: callback URLs carry tokens.
 */
export class JobJournal {
  readonly #file: string
  readonly #settings: JournalSettings
  readonly #now: () => number
  #saving: Promise<void> = Promise.resolve()

  constructor (stateDir: string, settings: JournalSettings, now: () => number = Date.now) {
    this.#file = join(stateDir, 'jobs.json')
    this.#settings = settings
    this.#now = now
  }

  get file (): string {
    return this.#file
  }

  /** Read once at start-up. A missing or unreadable journal is an empty one, never a refusal to start. */
  load (): JournalContents {
    let parsed: unknown
    try {
      parsed = JSON.parse(readFileSync(this.#file, 'utf8'))
    } catch {
      return { unfinished: [], finished: [] }
    }
    const contents = parsed as Partial<JournalContents> & { version?: number }
    if (contents.version !== VERSION) return { unfinished: [], finished: [] }
    const unfinished = Array.isArray(contents.unfinished) ? contents.unfinished.filter(isUnfinishedEntry) : []
    const finished = Array.isArray(contents.finished) ? contents.finished.filter((job) => isJob(job) && isFinal(job.status)) : []
    return { unfinished, finished: this.#recent(finished) }
  }

  /** Saves the state as it is; saves run one after another, so the last one wins. */
  async save (contents: JournalContents): Promise<void> {
    const text = `${JSON.stringify({ version: VERSION, unfinished: contents.unfinished, finished: this.#recent(contents.finished) })}\n`
    const saved = this.#saving.then(async () => {
      await mkdir(dirname(this.#file), { recursive: true })
      await writeFileAtomic(this.#file, text, { mode: 0o600 })
    })
    this.#saving = saved.catch(() => {})
    return saved
  }

  /** Resolves once every save asked for so far is on disk (or has failed). */
  async flush (): Promise<void> {
    await this.#saving
  }

  #recent (finished: DownloadJob[]): DownloadJob[] {
    const since = this.#now() - this.#settings.historyMaxAgeMs
    return finished.filter((job) => Date.parse(job.completed_at ?? job.updated_at) >= since).slice(0, this.#settings.historyMax)
  }
}

function isJob (value: unknown): value is DownloadJob {
  const job = value as Partial<DownloadJob> | null
  return typeof job === 'object' && job !== null && typeof job.job_id === 'string' && typeof job.model_id === 'string' && typeof job.status === 'string'
}

function isUnfinishedEntry (value: unknown): value is UnfinishedEntry {
  const entry = value as Partial<UnfinishedEntry> | null
  return typeof entry === 'object' && entry !== null && isJob(entry.job) &&
    typeof entry.request?.modelId === 'string' && typeof entry.request.revision === 'string'
}
