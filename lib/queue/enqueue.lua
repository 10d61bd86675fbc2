-- Enqueue one or more tasks of one queue (all keys share its hash tag).
-- KEYS: 1 pending list, 2 scheduled zset, 3 notify list
-- ARGV: 1 task key prefix ("{ns:q}:t:"), 2 unique key prefix ("{ns:q}:u:"),
--       then 8 per task: id, type, payload, max_retries,
--       timeout_ms, process_at_ms (0 = now), unique key ('' = none),
--       unique ttl ms.
-- Numbers go to redis.call as strings made once: Redis formats Lua
-- numbers with printf for every argument.
-- The hash holds m = "<id> <max_retries> <timeout_ms> <created_ms> <type>",
-- payload, state, retried (and process_at_ms when scheduled, unique_key
-- when set); see docs/queue.md.
-- Task and unique keys are built from the prefixes: they carry the same
-- hash tag as KEYS, so they live in the same cluster slot.
-- Returns two elements per task: {1, state} on success, {0, ''} when the
-- id exists, {-1, owner id} when the unique key is taken.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local snow = tostring(now)
local pfx, upfx = ARGV[1], ARGV[2]
local out, ready, sched = {}, {}, 0
for i = 3, #ARGV, 8 do
  local id, uk = ARGV[i], ARGV[i + 6]
  local k = pfx .. id
  -- Also for our random ids: a call re-sent after a lost reply must not
  -- push an id twice.
  if redis.call('EXISTS', k) == 1 then
    out[#out + 1] = 0
    out[#out + 1] = ''
  elseif uk ~= '' and not redis.call('SET', upfx .. uk, id, 'NX', 'PX', ARGV[i + 7]) then
    out[#out + 1] = -1
    out[#out + 1] = redis.call('GET', upfx .. uk) or ''
  else
    local at = tonumber(ARGV[i + 5])
    local state, sat = 'pending', snow
    if at > now then state, sat = 'scheduled', ARGV[i + 5] end
    -- The immutable fields in one ("m", see docs/queue.md): each hash
    -- field costs Redis time in this HSET and in dequeue's HMGET.
    -- process_at_ms is written only when it differs from created_ms.
    local m = id .. ' ' .. ARGV[i + 3] .. ' ' .. ARGV[i + 4] .. ' ' .. snow .. ' ' ..
      ARGV[i + 1]
    if state == 'scheduled' then
      if uk ~= '' then
        redis.call('HSET', k, 'm', m, 'payload', ARGV[i + 2], 'state', state,
          'retried', '0', 'process_at_ms', sat, 'unique_key', uk)
      else
        redis.call('HSET', k, 'm', m, 'payload', ARGV[i + 2], 'state', state,
          'retried', '0', 'process_at_ms', sat)
      end
    elseif uk ~= '' then
      redis.call('HSET', k, 'm', m, 'payload', ARGV[i + 2], 'state', state,
        'retried', '0', 'unique_key', uk)
    else
      redis.call('HSET', k, 'm', m, 'payload', ARGV[i + 2], 'state', state,
        'retried', '0')
    end
    if state == 'scheduled' then
      redis.call('ZADD', KEYS[2], sat, id)
      sched = sched + 1
    else
      ready[#ready + 1] = id
    end
    out[#out + 1] = 1
    out[#out + 1] = state
  end
end
-- One LPUSH for the whole batch keeps FIFO order (RPOP takes the first).
if #ready > 0 then redis.call('LPUSH', KEYS[1], unpack(ready)) end
-- One wake-up token per task (a scheduled one wakes a sleeper so that it
-- shortens its wait to the new due time); dequeue trims them.
local n = #ready + sched
if n > 0 then
  local tok = {}
  for i = 1, n do tok[i] = '1' end
  redis.call('LPUSH', KEYS[3], unpack(tok))
end
return out
