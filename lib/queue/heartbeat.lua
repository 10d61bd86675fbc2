-- Extend a lease. KEYS: 1 lease zset, 2 task hash.
-- ARGV: 1 id, 2 lease token, 3 lease ms.
-- Returns the new deadline, -1 when the lease is lost, -2 when the task
-- ran past its timeout (not extended).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', KEYS[2], 'lease', 'started_ms', 'm', 'timeout_ms')
if f[1] ~= ARGV[2] or not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return -1
end
-- m = "<id> <max_retries> <timeout_ms> ..." (an older version's hash:
-- timeout_ms)
local tmo = f[3] and tonumber(string.match(f[3], '^%S+ %d+ (%d+) ')) or
  tonumber(f[4]) or 0
if tmo > 0 and now > (tonumber(f[2]) or now) + tmo then
  return -2
end
local deadline = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], deadline, ARGV[1])
redis.call('HSET', KEYS[2], 'deadline_ms', deadline)
return deadline
