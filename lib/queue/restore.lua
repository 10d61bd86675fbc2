-- Put back a task that PostgreSQL holds open but Redis lost (the ledger
-- reconciler, lib/worker/ledger.c). KEYS: 1 task hash, 2 pending list,
-- 3 notify list (all of one queue: one hash tag).
-- ARGV: 1 id, 2 type, 3 payload, 4 max_retries, 5 timeout_ms,
--       6 retried (attempts already made), 7 error (why it was put back).
-- Returns 1 when the task was put back, 0 when the queue has a task with
-- this id already, in any state: the id stays unique, and a task in
-- flight (active, with its lease) or finished is never touched.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('TIME')
local now = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
-- the same message enqueue.lua writes (docs/queue.md), with the retry
-- count the ledger has and the reason as its last error
local m = ARGV[1] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. now .. ' ' .. ARGV[2]
redis.call('HSET', KEYS[1], 'm', m, 'payload', ARGV[3], 'state', 'pending',
  'retried', ARGV[6], 'error', ARGV[7])
-- at the head of its queue (dequeue pops from the right): it is older
-- than what was queued since
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[3], '1')
return 1
