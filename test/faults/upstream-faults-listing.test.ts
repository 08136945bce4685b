import t from 'tap'
import { sha256Hex } from '../fakes/fake-hub.js'
import { wrongBlobs } from '../helpers/cache-checks.js'
import { hubAndApp, startDownload, waitForEnd } from '../helpers/downloads.js'
import { API_PATHS, ENV, testFaultsIn } from './upstream-fault-matrix.js'

testFaultsIn(t, 'listing')

t.test('a listing whose object id is garbled: the download is refused by the checksum, nothing wrong is kept', async (t) => {
  const { app, hub, cacheDir, model } = await hubAndApp(t, ENV)
  hub.injectApiFault(API_PATHS.listing, { kind: 'corrupt', atText: sha256Hex(model.weights).slice(0, 8) })
  const { job } = await startDownload(app, { model_id: 'org/tiny' })
  const ended = await waitForEnd(app, job.job_id)
  t.equal(ended.status, 'error')
  t.match(ended.error, { code: 'MD_DOWNLOAD_FAILED', message: /checksum mismatch/ })
  t.same(wrongBlobs(cacheDir), [], 'the weights never went into blobs/ under the wrong name')
})
