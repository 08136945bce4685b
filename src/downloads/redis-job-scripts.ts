// The job store's changes in Redis, each one Lua script: Redis runs a script whole, with nothing of
// another client's in between, so a check and the change it allows are one step. The table of
// allowed changes stays in TypeScript (job-store.ts); a script is told which statuses a change is
// allowed from and refuses it when the job is in another. Keys other than KEYS are built from a
// prefix inside the scripts: one Redis (not a Redis Cluster) holds them all.

const FINAL = "s == 'complete' or s == 'error' or s == 'cancelled'"

/**
 * Creates a job (queued, or complete from the cache). A queued download that another job already
 * does unfinished (the `same` key: model, revision, patterns, callback) is joined, not queued twice.
 * Ended jobs beyond the history bound are let go, oldest first.
 * KEYS: job hash, list, queue, same, seq. ARGV: id, job JSON, request JSON, status, limit, job key prefix, channel, message,
 * not before (ms since the epoch: a job waiting for the Hub's cooldown is not taken earlier; 0 for none),
 * kind (verify, or '' for a download).
 */
export const CREATE = `
local status = redis.call('HGET', KEYS[1], 'status')
if status then return {'exists', status} end
if ARGV[4] == 'queued' then
  local other = redis.call('GET', KEYS[4])
  if other then
    local s = redis.call('HGET', ARGV[6] .. other, 'status')
    if s and not (${FINAL}) then return {'joined', other} end
  end
end
local order = redis.call('INCR', KEYS[5])
redis.call('HSET', KEYS[1], 'job', ARGV[2], 'status', ARGV[4], 'epoch', 0, 'order', order, 'not_before', ARGV[9] or '0')
if ARGV[10] and ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'kind', ARGV[10]) end
redis.call('ZADD', KEYS[2], order, ARGV[1])
if ARGV[4] == 'queued' then
  redis.call('HSET', KEYS[1], 'request', ARGV[3], 'same', KEYS[4])
  redis.call('ZADD', KEYS[3], order, ARGV[1])
  redis.call('SET', KEYS[4], ARGV[1])
end
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if excess > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if excess <= 0 then break end
    local s = redis.call('HGET', ARGV[6] .. old, 'status')
    if not s or ${FINAL} then
      redis.call('DEL', ARGV[6] .. old)
      redis.call('ZREM', KEYS[2], old)
      excess = excess - 1
    end
  end
end
redis.call('PUBLISH', ARGV[7], ARGV[8])
return {'created', ''}
`

/**
 * Takes the queued job that has waited longest, if fewer downloads than the limit run: → downloading, with a
 * new epoch and a lease of this replica's (`replica:epoch`, expiring unless renewed). A verify job
 * (`kind` verify) takes no download slot: it is taken whenever it is queued, → verifying.
 * Jobs whose `not_before` is still ahead (waiting for the Hub's cooldown) stay where they are.
 * KEYS: queue, running. ARGV: max running, job key prefix, lease key prefix, replica id, lease ms, now (ms).
 * Answers nil, or {id, epoch, job JSON, request JSON}.
 */
export const CLAIM = `
local downloads = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('HGET', ARGV[2] .. id, 'kind') ~= 'verify' then downloads = downloads + 1 end
end
local full = downloads >= tonumber(ARGV[1])
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[2] .. id
  local status = redis.call('HGET', key, 'status')
  local due = tonumber(redis.call('HGET', key, 'not_before') or '0') <= tonumber(ARGV[6] or '0')
  local verify = redis.call('HGET', key, 'kind') == 'verify'
  if status ~= 'queued' then redis.call('ZREM', KEYS[1], id) end
  if status == 'queued' and due and (verify or not full) then
    redis.call('ZREM', KEYS[1], id)
    local epoch = redis.call('HINCRBY', key, 'epoch', 1)
    redis.call('HSET', key, 'status', verify and 'verifying' or 'downloading')
    redis.call('SADD', KEYS[2], id)
    redis.call('SET', ARGV[3] .. id, ARGV[4] .. ':' .. epoch, 'PX', ARGV[5])
    return {id, tostring(epoch), redis.call('HGET', key, 'job'), redis.call('HGET', key, 'request') or ''}
  end
end
return false
`

/**
 * One change of a job: allowed only from the listed statuses and, when a lease token is given, only
 * while that lease is the job's (the fencing check: a replica that lost the job writes nothing).
 * Back to queued, paused or ended, the job leaves the running set and its lease goes; paused, it is
 * in the paused set until it is resumed (queued) or cancelled.
 * An ended job is let go after the history's age (JOB_HISTORY_MAX_AGE_S).
 * KEYS: job hash, queue, running, lease, paused.
 * ARGV: id, allowed statuses (space-separated), token or '', status, job JSON, channel or '', message, history ms.
 * Answers {'ok' | 'unknown' | 'lost' | 'refused', status before}.
 */
export const WRITE = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'unknown', ''} end
if ARGV[3] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[3] then return {'lost', status} end
local allowed = false
for s in string.gmatch(ARGV[2], '%S+') do
  if s == status then allowed = true end
end
if not allowed then return {'refused', status} end
local s = ARGV[4]
redis.call('HSET', KEYS[1], 'job', ARGV[5], 'status', s)
if s == 'queued' then
  redis.call('ZADD', KEYS[2], redis.call('HGET', KEYS[1], 'order'), ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[1])
  redis.call('SREM', KEYS[5], ARGV[1])
  redis.call('DEL', KEYS[4])
elseif s == 'paused' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[1])
  redis.call('SADD', KEYS[5], ARGV[1])
  redis.call('DEL', KEYS[4])
  redis.call('HDEL', KEYS[1], 'pause')
elseif ${FINAL} then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[1])
  redis.call('SREM', KEYS[5], ARGV[1])
  redis.call('DEL', KEYS[4])
  local same = redis.call('HGET', KEYS[1], 'same')
  if same and redis.call('GET', same) == ARGV[1] then redis.call('DEL', same) end
  redis.call('HDEL', KEYS[1], 'request', 'same', 'cancel', 'pause', 'rate')
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
end
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], ARGV[7]) end
return {'ok', status}
`

/**
 * The heartbeat of one job: renews the lease while it is this replica's. A lease that ran out with
 * nobody taking the job meanwhile (same epoch) is taken again. Answers {'held', cancel flag, pause flag},
 * {'lost', ''} (another replica has it), or {'gone', ''} (Redis no longer has the job: it restarted
 * without its data). The flags: cancel, pause, and the cap asked for (`rate`).
 * KEYS: lease, job hash, running. ARGV: token, lease ms, epoch, id.
 */
export const RENEW = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'held', redis.call('HGET', KEYS[2], 'cancel') or '', redis.call('HGET', KEYS[2], 'pause') or '', redis.call('HGET', KEYS[2], 'rate') or ''}
end
if holder then return {'lost', ''} end
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then return {'gone', ''} end
if epoch == ARGV[3] and redis.call('SISMEMBER', KEYS[3], ARGV[4]) == 1 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'held', redis.call('HGET', KEYS[2], 'cancel') or '', redis.call('HGET', KEYS[2], 'pause') or '', redis.call('HGET', KEYS[2], 'rate') or ''}
end
return {'lost', ''}
`

/**
 * A job's own cap: its JSON and its request written together, allowed only from the listed statuses
 * and, with a lease token, only while that lease is the job's. The `rate` flag (a cap asked of the
 * replica that runs the job) goes once the cap it asked for is written, not a newer one.
 * KEYS: job hash, lease. ARGV: id, allowed statuses, token or '', job JSON, request JSON or '', channel, message, rate flag.
 * Answers {'ok' | 'unknown' | 'lost' | 'refused', status before}.
 */
export const RATE = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'unknown', ''} end
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[3] then return {'lost', status} end
local allowed = false
for s in string.gmatch(ARGV[2], '%S+') do
  if s == status then allowed = true end
end
if not allowed then return {'refused', status} end
redis.call('HSET', KEYS[1], 'job', ARGV[4])
if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[1], 'request') == 1 then redis.call('HSET', KEYS[1], 'request', ARGV[5]) end
if redis.call('HGET', KEYS[1], 'rate') == ARGV[8] then redis.call('HDEL', KEYS[1], 'rate') end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return {'ok', status}
`

/**
 * Puts back a job this replica runs that Redis no longer has (it restarted without persistence):
 * its owner writes what it knows. KEYS: job hash, list, running, lease, same, seq.
 * ARGV: id, job JSON, request JSON or '', status, epoch, token, lease ms, kind (verify, or '').
 */
export const RESTORE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local order = redis.call('INCR', KEYS[6])
redis.call('HSET', KEYS[1], 'job', ARGV[2], 'status', ARGV[4], 'epoch', ARGV[5], 'order', order)
if ARGV[8] and ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'kind', ARGV[8]) end
redis.call('ZADD', KEYS[2], order, ARGV[1])
local s = ARGV[4]
if not (${FINAL}) then
  redis.call('HSET', KEYS[1], 'request', ARGV[3], 'same', KEYS[5])
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('SET', KEYS[4], ARGV[6], 'PX', ARGV[7])
  redis.call('SET', KEYS[5], ARGV[1])
end
return 1
`

/**
 * Gives every running job whose lease ran out (its replica died, or hangs) back to the queue, at its
 * old place, with a new epoch, so the old owner's writes are refused; one that was asked to pause
 * meanwhile is paused instead. Answers their ids.
 * KEYS: running, queue, paused. ARGV: job key prefix, lease key prefix.
 */
export const REAP = `
local reaped = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[2] .. id) == 0 then
    local key = ARGV[1] .. id
    redis.call('SREM', KEYS[1], id)
    local s = redis.call('HGET', key, 'status')
    if s == 'downloading' or s == 'verifying' then
      redis.call('HINCRBY', key, 'epoch', 1)
      if redis.call('HGET', key, 'pause') then
        redis.call('HSET', key, 'status', 'paused')
        redis.call('HDEL', key, 'pause')
        redis.call('SADD', KEYS[3], id)
      else
        redis.call('HSET', key, 'status', 'queued')
        redis.call('ZADD', KEYS[2], redis.call('HGET', key, 'order'), id)
      end
      table.insert(reaped, id)
    end
  end
end
return reaped
`

/**
 * Renews a hold this replica has (a delivery lease): only while it is still this replica's.
 * KEYS: lease. ARGV: holder, lease ms. Answers 1 when held.
 */
export const HOLD = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`

/**
 * Takes up the callbacks in the outbox whose holder died (its lease ran out): each one becomes this
 * replica's to deliver. KEYS: outbox set. ARGV: outbox key prefix, lease key prefix, holder, lease ms.
 * Answers {id, url, event, body, ...}.
 */
export const OUTBOX_TAKE = `
local taken = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('SET', ARGV[2] .. id, ARGV[3], 'NX', 'PX', ARGV[4]) then
    local entry = redis.call('HMGET', ARGV[1] .. id, 'url', 'event', 'body')
    if entry[1] then
      table.insert(taken, id)
      table.insert(taken, entry[1])
      table.insert(taken, entry[2])
      table.insert(taken, entry[3])
    else
      redis.call('SREM', KEYS[1], id)
      redis.call('DEL', ARGV[2] .. id)
    end
  end
end
return taken
`
