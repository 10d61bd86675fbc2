-- Extend a lease. KEYS: 1 lease zset, 2 task hash.
-- ARGV: 1 id, 2 lease token, 3 lease ms.
-- Returns the new deadline, -1 when the lease is lost, -2 when the task
-- ran past its timeout (not extended).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', KEYS[2], 'lease', 'started_ms', 'timeout_ms')
if f[1] ~= ARGV[2] or not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return -1
end
local tmo = tonumber(f[3]) or 0
if tmo > 0 and now > (tonumber(f[2]) or now) + tmo then
  return -2
end
local deadline = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], deadline, ARGV[1])
redis.call('HSET', KEYS[2], 'deadline_ms', deadline)
return deadline
