#!lua name=wordcount
-- The job's atomic steps (protocol/src/library.rs names them and their
-- error codes). Every one is idempotent: a retried call (after a
-- lost reply, a stolen file, a restart) changes nothing the first did not.

-- Milliseconds since the epoch, by Redis's clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Enqueues one injection of a file once: a batch injects every file once,
-- a stream may inject a file many times, each under a new sequence number.
-- KEYS: queue, enqueued, meta. ARGV: seq, path, size, late_ms (how long
-- after it was due the source injects it). Returns the entry id, or nil
-- when that injection was enqueued before.
local function enqueue(keys, args)
  if redis.call('SADD', keys[2], args[1]) == 0 then
    return false
  end
  redis.call('HINCRBY', keys[3], 'files', 1)
  redis.call('HINCRBY', keys[3], 'bytes', args[3])
  return redis.call('XADD', keys[1], '*', 'path', args[2], 'size', args[3],
    'due_ms', now_ms() - tonumber(args[4]))
end

-- When the queue entry `id` was due: its due_ms, else its enqueue time.
local function due_ms(queue, id)
  local e = redis.call('XRANGE', queue, id, id)[1]
  if e then
    local f = e[2]
    for i = 1, #f, 2 do
      if f[i] == 'due_ms' then return tonumber(f[i + 1]) end
    end
  end
  return tonumber(string.match(id, '^(%d+)'))
end

-- Commits a file: XACK, and only if that returned 1, records its counts
-- (inline, staged or, for per-word commits, already added) and latency.
-- KEYS: queue, results, stats, latency, stage, failed.
-- ARGV: group, id, worker, path, bytes, words, how ('inline'|'staged'|'added'|'failed'),
-- stolen ('1' when the worker stole the file), [packed or error].
-- Returns 1 if this call committed the file, 0 if it had been committed before.
local function commit(keys, args)
  local id, how = args[2], args[7]
  if how == 'staged' and redis.call('EXISTS', keys[5]) == 0 then
    return redis.error_reply('WCSTAGEGONE staged counts of ' .. id .. ' are gone')
  end
  -- [[id, consumer, ms since it was taken, deliveries]] while pending.
  local held = redis.call('XPENDING', keys[1], args[1], id, id, 1)[1]
  local acked = redis.call('XACK', keys[1], args[1], id)
  if acked == 0 then
    redis.call('DEL', keys[5])
    redis.call('HINCRBY', keys[3], 'commits_ignored', 1)
  elseif how == 'failed' then
    redis.call('HSET', keys[6], args[4], args[9])
    redis.call('HINCRBY', keys[3], 'files_failed', 1)
  else
    if how == 'staged' then
      redis.call('HSET', keys[2], id, redis.call('GET', keys[5]))
      redis.call('DEL', keys[5])
    elseif how == 'inline' then
      redis.call('HSET', keys[2], id, args[9])
    end
    redis.call('HINCRBY', keys[3], 'files_done', 1)
    redis.call('HINCRBY', keys[3], 'words', args[6])
    redis.call('HINCRBY', keys[3], 'bytes_done', args[5])
    local due, now = due_ms(keys[1], id), now_ms()
    redis.call('XADD', keys[4], '*', 'id', id, 'path', args[4], 'worker', args[3],
      'latency_ms', now - due, 'due_ms', due, 'bytes', args[5], 'stolen', args[8],
      'taken_ms', now - held[3])
  end
  return acked
end

-- Marks a crash fault as fired, once per job. KEYS: faults. ARGV: spec.
local function fire(keys, args)
  return redis.call('HSETNX', keys[1], args[1], now_ms())
end

redis.register_function('wc_enqueue', enqueue)
redis.register_function('wc_commit', commit)
redis.register_function('wc_fire', fire)
