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
-- after it was due the source injects it), range ('START-END' of a large
-- file split, or ''), version (what reads are pinned to, or ''). Returns
-- the entry id, or nil when that injection was enqueued before.
local function enqueue(keys, args)
  if redis.call('SADD', keys[2], args[1]) == 0 then
    return false
  end
  redis.call('HINCRBY', keys[3], 'files', 1)
  redis.call('HINCRBY', keys[3], 'bytes', args[3])
  local fields = {'path', args[2], 'size', args[3],
    'due_ms', now_ms() - tonumber(args[4]), 'seq', args[1]}
  if args[5] ~= '' then table.insert(fields, 'range'); table.insert(fields, args[5]) end
  if args[6] ~= '' then table.insert(fields, 'version'); table.insert(fields, args[6]) end
  return redis.call('XADD', keys[1], '*', unpack(fields))
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

-- Commits files, their counts summed into one (a worker's batch: see
-- docs/src/protocol.md): XACK each, and record the counts (staged, renamed to
-- the result key: the counts never pass through Lua, which would hash
-- them; or, for per-word commits, already added) and each file's latency.
-- A batch is all or nothing. Any file committed before (by a worker that
-- had it first) would be counted twice: if every file was, the commit is
-- ignored; if some were, it is refused, and the worker recounts the rest.
-- KEYS: queue, result, stats, latency, stage, failed.
-- ARGV: group, worker, how ('staged'|'added'|'failed'), error (or ''),
-- then for each file: id, path, bytes, words, stolen ('1' when the worker
-- stole it). 'failed' and 'added' commit one file.
-- Returns the ids committed before: none when this call committed them all.
local function commit(keys, args)
  local group, how = args[1], args[3]
  if how == 'staged' and redis.call('EXISTS', keys[5]) == 0 then
    return redis.error_reply('WCSTAGEGONE staged counts of ' .. args[5] .. ' are gone')
  end
  -- [[id, consumer, ms since it was taken, deliveries]] while pending.
  local held, before = {}, {}
  for i = 5, #args, 5 do
    held[i] = redis.call('XPENDING', keys[1], group, args[i], args[i], 1)[1]
    if not held[i] then before[#before + 1] = args[i] end
  end
  if #before > 0 then
    redis.call('DEL', keys[5])
    redis.call('HINCRBY', keys[3], 'commits_ignored', #before)
    return before
  end
  if how == 'staged' then
    redis.call('RENAME', keys[5], keys[2])
  end
  local now = now_ms()
  for i = 5, #args, 5 do
    local id, path, bytes = args[i], args[i + 1], args[i + 2]
    redis.call('XACK', keys[1], group, id)
    if how == 'failed' then
      redis.call('HSET', keys[6], path, args[4])
      redis.call('HINCRBY', keys[3], 'files_failed', 1)
    else
      redis.call('HINCRBY', keys[3], 'files_done', 1)
      redis.call('HINCRBY', keys[3], 'words', args[i + 3])
      redis.call('HINCRBY', keys[3], 'bytes_done', bytes)
      local due = due_ms(keys[1], id)
      redis.call('XADD', keys[4], '*', 'id', id, 'path', path, 'worker', args[2],
        'latency_ms', now - due, 'due_ms', due, 'bytes', bytes, 'stolen', args[i + 4],
        'taken_ms', now - held[i][3])
    end
  end
  return before
end

-- Marks a crash fault as fired, once per job. KEYS: faults. ARGV: spec.
local function fire(keys, args)
  return redis.call('HSETNX', keys[1], args[1], now_ms())
end

-- The lease queue (RedisRaft). RedisRaft refuses streams, and inside a
-- function anything with random results (TIME), so this queue is plain
-- lists, hashes and sorted sets, and the caller passes its clock. A
-- function that fails half way keeps the writes it made, on every replica:
-- each one checks first and writes last.

-- Enqueues injections, each once: one call for many, since every call is
-- an entry of the Raft log. KEYS: ready, entries, enqueued, meta.
-- ARGV: now_ms, then for each: seq, path, size, late_ms (how long after it
-- was due the source injects it), range, version (as wc_enqueue's). Entry
-- ids count up in meta's next_id. Returns how many were new.
local function lease_enqueue(keys, args)
  local now, added = tonumber(args[1]), 0
  for i = 2, #args, 6 do
    local seq, path, size = args[i], args[i + 1], args[i + 2]
    if redis.call('SISMEMBER', keys[3], seq) == 0 then
      local id = tostring(redis.call('HINCRBY', keys[4], 'next_id', 1))
      local e = {path = path, size = tonumber(size),
        due_ms = now - tonumber(args[i + 3]), injected_ms = now}
      if args[i + 4] ~= '' then e.range = args[i + 4] end
      if args[i + 5] ~= '' then e.version = args[i + 5] end
      redis.call('HSET', keys[2], id, cjson.encode(e))
      redis.call('RPUSH', keys[1], id)
      redis.call('SADD', keys[3], seq)
      redis.call('HINCRBY', keys[4], 'files', 1)
      redis.call('HINCRBY', keys[4], 'bytes', size)
      added = added + 1
    end
  end
  return added
end

-- Leases a file to a consumer: the next one nobody took, else one whose
-- lease is older than the claim timeout (stolen). The ticket makes a retry
-- after a lost reply return what the first call leased. Returns
-- {id, entry (JSON), stolen (0|1)}, or false when there is none.
-- k: ready, leases, holders, tickets, entries.
local function lease_next(k, consumer, ticket, now, claim_timeout)
  local last = redis.call('HGET', k.tickets, consumer)
  if last then
    local t, id, stolen = string.match(last, '^(%S+) (%S+) (%d)$')
    if t == ticket and redis.call('HGET', k.holders, id) == consumer then
      return {id, redis.call('HGET', k.entries, id), tonumber(stolen)}
    end
  end
  local id, stolen = redis.call('LPOP', k.ready), 0
  if not id then
    id = redis.call('ZRANGE', k.leases, '-inf', now - claim_timeout, 'BYSCORE', 'LIMIT', 0, 1)[1]
    stolen = 1
  end
  if not id then
    return false
  end
  redis.call('ZADD', k.leases, now, id)
  redis.call('HSET', k.holders, id, consumer)
  redis.call('HSET', k.tickets, consumer, ticket .. ' ' .. id .. ' ' .. stolen)
  return {id, redis.call('HGET', k.entries, id), stolen}
end

-- Takes a file (see lease_next). KEYS: ready, leases, holders, tickets,
-- entries. ARGV: consumer, ticket, now_ms, claim_timeout_ms.
local function lease_take(keys, args)
  local k = {ready = keys[1], leases = keys[2], holders = keys[3], tickets = keys[4],
    entries = keys[5]}
  return lease_next(k, args[1], args[2], tonumber(args[3]), tonumber(args[4]))
end

-- Commits a file once, then takes the committing worker's next file in the
-- same call: one entry of the Raft log a file, not two. The commit, only
-- if the id is not in the done set, records the file's counts and a commit
-- record, and ends its lease.
-- KEYS: done, leases, holders, entries, result, stats, log, stage, failed,
-- ready, tickets.
-- ARGV: id, worker, path, bytes, words, how ('inline'|'staged'|'added'|'failed'),
-- stolen, now_ms, ticket, claim_timeout_ms, [packed or error].
-- Returns {1 if this call committed the file (0 if it had been committed
-- before), the next file as lease_next returns it}.
local function lease_commit(keys, args)
  local id, how, now = args[1], args[6], tonumber(args[8])
  local k = {ready = keys[10], leases = keys[2], holders = keys[3], tickets = keys[11],
    entries = keys[4]}
  local take_next = function()
    return lease_next(k, args[2], args[9], now, tonumber(args[10]))
  end
  if redis.call('SISMEMBER', keys[1], id) == 1 then
    redis.call('DEL', keys[8])
    redis.call('HINCRBY', keys[6], 'commits_ignored', 1)
    return {0, take_next()}
  end
  if how == 'staged' and redis.call('EXISTS', keys[8]) == 0 then
    return redis.error_reply('WCSTAGEGONE staged counts of ' .. id .. ' are gone')
  end
  local entry = cjson.decode(redis.call('HGET', keys[4], id) or '{}')
  local taken = tonumber(redis.call('ZSCORE', keys[2], id)) or now
  local due = entry.due_ms or now
  redis.call('SADD', keys[1], id)
  redis.call('ZREM', keys[2], id)
  redis.call('HDEL', keys[3], id)
  if how == 'failed' then
    redis.call('HSET', keys[9], args[3], args[11])
    redis.call('HINCRBY', keys[6], 'files_failed', 1)
    return {1, take_next()}
  end
  if how == 'staged' then
    redis.call('RENAME', keys[8], keys[5])
  elseif how == 'inline' then
    -- Through Lua, unlike a stage: a stage would be a second entry of the
    -- Raft log (and fsync) for each file, which costs more.
    redis.call('SET', keys[5], args[11])
  end
  redis.call('HINCRBY', keys[6], 'files_done', 1)
  redis.call('HINCRBY', keys[6], 'words', args[5])
  redis.call('HINCRBY', keys[6], 'bytes_done', args[4])
  redis.call('RPUSH', keys[7], cjson.encode({id = id, path = args[3], worker = args[2],
    latency_ms = now - due, due_ms = due, bytes = tonumber(args[4]), stolen = args[7],
    taken_ms = taken, injected_ms = entry.injected_ms or due, committed_ms = now}))
  return {1, take_next()}
end

-- Marks a fault as fired, once per job, at the caller's time.
-- KEYS: faults. ARGV: spec, now_ms.
local function lease_fire(keys, args)
  return redis.call('HSETNX', keys[1], args[1], args[2])
end

-- The CRDT (three sites). Each instance keeps a grow-only map global id
-- -> packed counts (`word\tcount\n` lines) and per-origin-site digests
-- (`count:xor` of the first 64 bits of the ids' SHA-1) so that two
-- instances compare equal sets in one read. The counts are the sum over
-- the map, folded by the client when it reads them (a Lua sorted-set update
-- per word of every file cost 25 ms a KJV-sized file, on each instance). A
-- global id is `SITE/PATH#SEQ`: the origin site comes before the first
-- '/'. No TIME and nothing random: the same call gives the same result on
-- every instance.

-- The digest `count:xor` with the ids of `ids` added to it.
local function crdt_digest(digest, ids)
  local n, hi, lo = 0, 0, 0
  if digest then
    local c, h, l = string.match(digest, '^(%d+):(%x%x%x%x%x%x%x%x)(%x%x%x%x%x%x%x%x)$')
    n, hi, lo = tonumber(c), tonumber(h, 16), tonumber(l, 16)
  end
  for _, id in ipairs(ids) do
    local sha = redis.sha1hex(id)
    hi = bit.bxor(hi, tonumber(string.sub(sha, 1, 8), 16))
    lo = bit.bxor(lo, tonumber(string.sub(sha, 9, 16), 16))
  end
  return (n + #ids) .. ':' .. bit.tohex(hi) .. bit.tohex(lo)
end

-- Applies files to this instance: only the ids new to it are stored.
-- KEYS: files, digest, stats. ARGV: repair ('1' when read repair sends
-- them, else '0'), n, then n id, packed pairs. Returns {files, bytes} new
-- to this instance ({0, 0}: nothing changed). A malformed call fails
-- before any write.
local function crdt_apply(keys, args)
  local n = tonumber(args[2])
  if not n or #args ~= 2 + 2 * n then
    return redis.error_reply('ERR wc_crdt_apply takes repair, n, n id, packed pairs')
  end
  local new, seen, sites = {}, {}, {}
  for i = 3, 2 + 2 * n, 2 do
    local id = args[i]
    local site = string.match(id, '^([^/]+)/')
    if not site then
      return redis.error_reply('WCBADID global id ' .. id .. ' has no SITE/ prefix')
    end
    if not seen[id] and redis.call('HEXISTS', keys[1], id) == 0 then
      seen[id] = true
      new[#new + 1] = i
      sites[site] = sites[site] or {}
      table.insert(sites[site], id)
    end
  end
  if #new == 0 then
    return {0, 0}
  end
  local bytes = 0
  for _, i in ipairs(new) do
    redis.call('HSET', keys[1], args[i], args[i + 1])
    bytes = bytes + #args[i + 1]
  end
  for site, ids in pairs(sites) do
    redis.call('HSET', keys[2], site, crdt_digest(redis.call('HGET', keys[2], site), ids))
  end
  redis.call('HINCRBY', keys[3], 'files_known', #new)
  redis.call('HINCRBY', keys[3], 'bytes_known', bytes)
  if args[1] == '1' then
    redis.call('HINCRBY', keys[3], 'files_repaired', #new)
    redis.call('HINCRBY', keys[3], 'bytes_repaired', bytes)
  end
  return {#new, bytes}
end

redis.register_function('wc_enqueue', enqueue)
redis.register_function('wc_commit', commit)
redis.register_function('wc_fire', fire)
redis.register_function('wc_lease_enqueue', lease_enqueue)
redis.register_function('wc_lease_take', lease_take)
redis.register_function('wc_lease_commit', lease_commit)
redis.register_function('wc_lease_fire', lease_fire)
redis.register_function('wc_crdt_apply', crdt_apply)
