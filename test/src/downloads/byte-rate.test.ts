import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { ByteRate, MAX_BYTES_PER_S_MIN } from '../../../src/downloads/byte-rate.js'

// The token bucket a transfer waits on: its cap can change, or go, while readers wait in it.

t.test('a cap lifted while a reader waits lets it go at once, and the process stays responsive', async (t) => {
  const rate = new ByteRate(MAX_BYTES_PER_S_MIN)
  let done = false
  const waiting = rate.take(10 * MAX_BYTES_PER_S_MIN).then(() => { done = true })
  await sleep(200)
  t.notOk(done, 'ten seconds\' worth is not given in 200 ms')
  rate.set(null)
  const timer = sleep(300).then(() => 'timer')
  t.equal(await Promise.race([waiting.then(() => 'taken'), timer]), 'taken', 'the wait ended once the cap was lifted')
  t.equal(await timer, 'timer', 'timers still fire: the wait did not spin')
})

t.test('a cap lowered to the smallest while a reader waits is kept, not refused', async (t) => {
  const rate = new ByteRate(64 * MAX_BYTES_PER_S_MIN)
  await rate.take(16 * 1024)
  const waiting = rate.take(8 * MAX_BYTES_PER_S_MIN)
  rate.set(MAX_BYTES_PER_S_MIN)
  const started = Date.now()
  await t.resolves(Promise.race([waiting, sleep(1500)]), 'no "exceeds bucket size" error')
  t.ok(Date.now() - started >= 1400, 'and it waits at the new, lower rate')
})

t.test('a job without a cap of its own is under the server\'s; a cap below the smallest is refused', async (t) => {
  const server = new ByteRate(MAX_BYTES_PER_S_MIN * 4)
  const uncapped = new ByteRate(null, server)
  t.ok(uncapped.capped, 'the server\'s cap counts for the job')
  t.notOk(new ByteRate(null, new ByteRate(null)).capped)
  t.throws(() => new ByteRate(1000), RangeError, 'a cap below the smallest is refused')
})
