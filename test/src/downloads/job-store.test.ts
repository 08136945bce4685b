import t from 'tap'
import { InMemoryJobStore } from '../../../src/downloads/in-memory-job-store.js'
import { JobJournal } from '../../../src/downloads/job-journal.js'
import { jobStoreContract } from './job-store-contract.js'

// The in-memory store, with its journal in the place's folder, as `npm start` runs it.
jobStoreContract(t, (place, options = {}) => new InMemoryJobStore({
  journal: new JobJournal(place, { historyMax: 100, historyMaxAgeMs: 3600_000 }),
  ...(options.limit === undefined ? {} : { limit: options.limit })
}))
