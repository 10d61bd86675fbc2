-- Fail a task, or give it back un-started. KEYS: 1 lease zset, 2 task
-- hash, 3 retry zset, 4 dead zset, 5 done list, 6 notify list, 7 pending.
-- ARGV: 1 id, 2 lease token, 3 error, 4 base ms, 5 max ms, 6 jitter
-- fraction (0..1), 7 random in [0,1), 8 mode: '0' retry or dead, '1' dead
-- (no retry), '2' release, 9 dead_max, 10 retention ms (of the done list),
-- 11 unique key prefix, 12 task key prefix.
-- Returns {1, retry_at} when it will be retried, {2, 0} when dead,
-- {3, 0} when released, {-1, 0} when the lease is lost.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = ARGV[1]
local k = KEYS[2]
local f = redis.call('HMGET', k, 'lease', 'retried', 'm', 'unique_key',
  'waited')
if f[1] ~= ARGV[2] or redis.call('ZREM', KEYS[1], id) == 0 then
  return {-1, 0}
end
local retried = tonumber(f[2]) or 0
-- m = "<id> <max_retries> ..." (an older version's hash: max_retries)
local maxr = f[3] and tonumber(string.match(f[3], '^%S+ (%d+) ')) or
  tonumber(redis.call('HGET', k, 'max_retries')) or 0
redis.call('HDEL', k, 'lease', 'deadline_ms')
if ARGV[8] == '2' then
  -- back at the head of the queue (dequeue pops from the right)
  redis.call('HSET', k, 'state', 'pending', 'error', ARGV[3])
  redis.call('RPUSH', KEYS[7], id)
  redis.call('LPUSH', KEYS[6], '1')
  return {3, 0}
end
if ARGV[8] ~= '1' and retried < maxr then
  retried = retried + 1
  local d = tonumber(ARGV[4]) * (2 ^ (retried - 1))
  if d > tonumber(ARGV[5]) then d = tonumber(ARGV[5]) end
  d = math.floor(d * (1 + tonumber(ARGV[6]) * (2 * tonumber(ARGV[7]) - 1)))
  local at = now + d
  redis.call('HSET', k, 'state', 'retry', 'retried', retried, 'error', ARGV[3],
    'process_at_ms', at)
  redis.call('ZADD', KEYS[3], at, id)
  redis.call('LPUSH', KEYS[6], '1')
  return {1, at}
end
redis.call('HSET', k, 'state', 'dead', 'error', ARGV[3], 'finished_ms', now)
redis.call('ZADD', KEYS[4], now, id)
local uk = f[4]
if uk and uk ~= '' and redis.call('GET', ARGV[11] .. uk) == id then
  redis.call('DEL', ARGV[11] .. uk)
end
local n = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[9])
if n > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[4], 0, n - 1)) do
    redis.call('DEL', ARGV[12] .. old)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, n - 1)
end
if f[5] then
  redis.call('RPUSH', KEYS[5], '1')
  redis.call('PEXPIRE', KEYS[5], tonumber(ARGV[10]))
end
return {2, 0}
