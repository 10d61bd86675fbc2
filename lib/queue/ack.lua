-- Complete a task. KEYS: 1 lease zset, 2 task hash, 3 completed zset,
-- 4 done list (wakes wait_result).
-- ARGV: 1 id, 2 lease token, 3 result JSON, 4 retention ms,
--       5 unique key prefix
-- Returns 1, or -1 when the lease is lost. The lease token stays in the
-- completed task so that an ack re-sent after a lost reply is idempotent.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', KEYS[2], 'lease', 'state')
if f[1] ~= ARGV[2] then return -1 end
if f[2] == 'completed' then return 1 end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return -1 end
local ret = tonumber(ARGV[4])
redis.call('HSET', KEYS[2], 'state', 'completed', 'result', ARGV[3],
  'finished_ms', now)
redis.call('HDEL', KEYS[2], 'deadline_ms')
redis.call('PEXPIRE', KEYS[2], ret)
redis.call('ZADD', KEYS[3], now + ret, ARGV[1])
local uk = redis.call('HGET', KEYS[2], 'unique_key')
if uk and uk ~= '' and redis.call('GET', ARGV[5] .. uk) == ARGV[1] then
  redis.call('DEL', ARGV[5] .. uk)
end
redis.call('RPUSH', KEYS[4], '1')
redis.call('PEXPIRE', KEYS[4], ret)
return 1
