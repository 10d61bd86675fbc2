-- Enqueue one task (all keys share the queue's hash tag).
-- KEYS: 1 task hash, 2 pending list, 3 scheduled zset, 4 notify list,
--       5 unique lock (only when ARGV[8] ~= '')
-- ARGV: 1 id, 2 queue, 3 type, 4 payload, 5 max_retries, 6 timeout_ms,
--       7 process_at_ms (0 = now), 8 unique key, 9 unique ttl ms
-- Returns {1, state} on success, {0, ''} when the id exists,
-- {-1, owner id} when the unique key is taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, ''}
end
if ARGV[8] ~= '' then
  if not redis.call('SET', KEYS[5], ARGV[1], 'NX', 'PX', ARGV[9]) then
    return {-1, redis.call('GET', KEYS[5]) or ''}
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local at = tonumber(ARGV[7])
local state = 'pending'
if at > now then state = 'scheduled' end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'queue', ARGV[2], 'type', ARGV[3],
  'payload', ARGV[4], 'state', state, 'retried', 0, 'max_retries', ARGV[5],
  'timeout_ms', ARGV[6], 'created_ms', now, 'process_at_ms', math.max(at, now),
  'unique_key', ARGV[8])
if state == 'scheduled' then
  redis.call('ZADD', KEYS[3], at, ARGV[1])
else
  redis.call('LPUSH', KEYS[2], ARGV[1])
end
-- One wake-up token per task (a scheduled one wakes a sleeper so that it
-- shortens its wait to the new due time).
redis.call('LPUSH', KEYS[4], '1')
return {1, state}
