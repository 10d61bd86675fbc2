-- Promote due scheduled/retry tasks, recover expired leases, then move
-- up to ARGV[8] of the oldest pending tasks to active with a lease.
-- KEYS: 1 pending, 2 lease zset, 3 scheduled, 4 retry, 5 completed,
--       6 notify, 7 dead
-- ARGV: 1 task key prefix ("{ns:q}:t:"), 2 lease ms, 3 worker,
--       4 lease token prefix, 5 dead_max, 6 unique key prefix ("{ns:q}:u:"),
--       7 mode: '0' pop only, '1' maintenance only (promote, recover, trim),
--       '2' maintenance then pop. Maintenance costs several calls, so the
--       client runs it about every 100 ms and before it blocks, not on
--       every dequeue.
--       8 most tasks to take, 9 done list prefix ("{ns:q}:done:"),
--       10 retention ms (of a done list)
-- Task keys are built from ARGV[1]: they carry the same hash tag as KEYS,
-- so they live in the same cluster slot.
-- Returns {1, now, lease deadline, task, task...} (each task the values
-- of m, payload, retried, process_at_ms, error, unique_key, then its lease
-- token), {0, ms until the next due event or -1,
-- recovered count}, or {2, id, reason} when the only tasks popped were
-- malformed (moved to dead).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pfx = ARGV[1]
local recovered = 0

local function to_dead(id, k, reason)
  redis.call('HSET', k, 'id', id, 'state', 'dead', 'error', reason,
    'finished_ms', now)
  redis.call('HDEL', k, 'lease')
  redis.call('ZADD', KEYS[7], now, id)
  local f = redis.call('HMGET', k, 'unique_key', 'waited')
  local uk = f[1]
  if uk and uk ~= '' and redis.call('GET', ARGV[6] .. uk) == id then
    redis.call('DEL', ARGV[6] .. uk)
  end
  if f[2] then
    redis.call('RPUSH', ARGV[9] .. id, '1')
    redis.call('PEXPIRE', ARGV[9] .. id, tonumber(ARGV[10]))
  end
  local n = redis.call('ZCARD', KEYS[7]) - tonumber(ARGV[5])
  if n > 0 then
    for _, old in ipairs(redis.call('ZRANGE', KEYS[7], 0, n - 1)) do
      redis.call('DEL', pfx .. old)
    end
    redis.call('ZREMRANGEBYRANK', KEYS[7], 0, n - 1)
  end
end

local mode = ARGV[7]
if mode ~= '0' then
for _, z in ipairs({KEYS[3], KEYS[4]}) do
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 100)) do
    redis.call('ZREM', z, id)
    redis.call('LPUSH', KEYS[1], id)
    redis.call('LPUSH', KEYS[6], '1')
    redis.call('HSET', pfx .. id, 'state', 'pending')
  end
end

-- A lease that expired means its worker died or hung: count it as a
-- retry so that a task that kills its worker cannot loop for ever.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', KEYS[2], id)
  local k = pfx .. id
  local f = redis.call('HMGET', k, 'retried', 'm', 'worker')
  local retried = tonumber(f[1])
  local maxr = f[2] and tonumber(string.match(f[2], '^%S+ (%d+) '))
  if not f[2] then maxr = tonumber(redis.call('HGET', k, 'max_retries')) end
  local why = 'lease expired: worker ' .. (f[3] or '?') .. ' stopped heartbeating'
  if not retried or not maxr then
    to_dead(id, k, 'malformed message: missing retried/max_retries')
  elseif retried >= maxr then
    redis.call('HSET', k, 'retried', retried + 1)
    to_dead(id, k, why)
  else
    redis.call('HSET', k, 'retried', retried + 1, 'state', 'pending', 'error', why)
    redis.call('HDEL', k, 'lease')
    redis.call('RPUSH', KEYS[1], id)
    redis.call('LPUSH', KEYS[6], '1')
  end
  recovered = recovered + 1
end

redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
end

local ids = false
if mode ~= '1' then ids = redis.call('RPOP', KEYS[1], tonumber(ARGV[8])) end
if not ids then
  if mode ~= '2' then return {0, -1, recovered} end
  redis.call('DEL', KEYS[6])
  local nxt = -1
  for _, z in ipairs({KEYS[2], KEYS[3], KEYS[4]}) do
    local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
    if first[2] then
      local d = tonumber(first[2]) - now
      if d < 0 then d = 0 end
      if nxt < 0 or d < nxt then nxt = d end
    end
  end
  return {0, nxt, recovered}
end
-- Keep at most one wake-up token per pending task.
local left = redis.call('LLEN', KEYS[1])
if left == 0 then
  redis.call('DEL', KEYS[6])
else
  redis.call('LTRIM', KEYS[6], 0, left - 1)
end

-- A hash written by an older version (one field per value, no "m"):
-- build its m once, or nil when it is not a task message.
local function old_layout(id, k)
  local o = redis.call('HMGET', k, 'id', 'queue', 'type', 'max_retries',
    'timeout_ms', 'created_ms')
  if o[1] ~= id or not o[2] or not o[3] or not tonumber(o[4]) then return nil end
  local m = id .. ' ' .. o[4] .. ' ' .. (tonumber(o[5]) or 0) .. ' ' ..
    (tonumber(o[6]) or 0) .. ' ' .. o[3]
  redis.call('HSET', k, 'm', m)
  return m
end

-- Only the fields a consumer needs, by position (the client knows the
-- names): cheaper than HGETALL and a table per task. m packs id,
-- max_retries, timeout_ms, created_ms and type (docs/queue.md).
local deadline = now + tonumber(ARGV[2])
local snow, sdl = tostring(now), tostring(deadline)
local out, leases = {1, now, deadline}, {}
local bad_id, bad_reason
for i, id in ipairs(ids) do
  local k = pfx .. id
  local f = redis.call('HMGET', k, 'm', 'payload', 'retried', 'process_at_ms',
    'error', 'unique_key')
  local m = f[1]
  if not m then
    m = old_layout(id, k)
    f[1] = m
  end
  if not m or #m < 38 or string.sub(m, 1, 37) ~= id .. ' ' or
     not string.find(m, '^%d+ %d+ %d+ [^ ]', 38) or not f[2] or not tonumber(f[3]) then
    bad_id = id
    bad_reason = 'malformed message: missing or bad id/type/payload/retried/max_retries'
    to_dead(id, k, bad_reason)
  else
    local tok = ARGV[4] .. '.' .. i
    redis.call('HSET', k, 'state', 'active', 'started_ms', snow, 'lease', tok,
      'worker', ARGV[3], 'deadline_ms', sdl)
    leases[#leases + 1] = sdl
    leases[#leases + 1] = id
    f[7] = tok
    out[#out + 1] = f
  end
end
if #leases == 0 then return {2, bad_id, bad_reason} end
redis.call('ZADD', KEYS[2], unpack(leases))
return out
