-- Make Redis agree with PostgreSQL about a task Redis gave up on (dead)
-- that PostgreSQL has completed: a worker that lost its lease finished it
-- after all, and wrote its result (the ledger reconciler, lib/worker/
-- ledger.c; docs/queue.md "Ledger and transport": the ledger wins).
-- KEYS: 1 task hash, 2 dead zset, 3 completed zset (one queue's).
-- ARGV: 1 id, 2 result JSON, 3 retention ms.
-- Returns 1 when the task went from dead to completed, 0 when it is not
-- dead (nothing changed).
if redis.call('HGET', KEYS[1], 'state') ~= 'dead' then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'state', 'completed', 'result', ARGV[2],
  'finished_ms', tostring(now), 'deadline_ms', '0')
redis.call('HDEL', KEYS[1], 'lease')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], tostring(now + tonumber(ARGV[3])), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
