import { setImmediate } from 'node:timers/promises'
import t from 'tap'
import { auth } from '../helpers/app.js'
import { C1, hubAndApp, startDownload, waitForEnd } from '../helpers/downloads.js'

// Found by the route fuzzer: a listing that read the cache while a download renamed its partial
// files into blobs/ answered 500. Reading the cache must take it as it is at that moment, whatever
// a download or a delete does to it meanwhile.

const FILES = 40

t.test('listing the models and the system status while downloads and deletes change the cache never fails', async (t) => {
  const { app, hub } = await hubAndApp(t, { DOWNLOAD_FILE_CONCURRENCY: '8', RATE_LIMIT_PER_MINUTE: '1000000' })
  hub.addRepo({
    id: 'org/many',
    revisions: { main: { commit: C1, files: Array.from({ length: FILES }, (_, i) => ({ path: `shard-${i}.bin`, content: Buffer.alloc(64 * 1024, i), lfs: true })) } }
  })
  const failures: string[] = []
  let reads = 0
  const cache = { changing: true }
  const readWhileChanging = async (): Promise<void> => {
    while (cache.changing) {
      for (const url of ['/api/models', '/api/system-status']) {
        const res = await app.inject({ url, headers: auth() })
        reads++
        if (res.statusCode !== 200) failures.push(`${url} → ${res.statusCode} ${res.body.slice(0, 200)}`)
      }
      await setImmediate() // let the download's I/O through between two reads
    }
  }
  const readers = Array.from({ length: 4 }, readWhileChanging)
  try {
    for (let round = 0; round < 4; round++) {
      const { job } = await startDownload(app, { model_id: 'org/many' })
      t.equal((await waitForEnd(app, job.job_id)).status, 'complete', `round ${round}: the download completed`)
      const deleted = await app.inject({ method: 'DELETE', url: '/api/delete-model?model_id=org/many', headers: auth() })
      t.equal(deleted.statusCode, 200, `round ${round}: the model was deleted`)
    }
  } finally {
    cache.changing = false
    await Promise.all(readers)
  }
  t.ok(reads > 50, `${reads} reads happened while the cache changed`)
  t.same(failures, [], 'every read answered 200')
})
