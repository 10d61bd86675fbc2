-- Complete one or more tasks of one queue. KEYS: 1 lease zset,
-- 2 completed zset.
-- ARGV: 1 task key prefix, 2 unique key prefix, 3 done list prefix,
--       4 retention ms, then 3 per task: id, lease token, result JSON.
-- Returns one integer per task: 1, or -1 when the lease is lost. The lease
-- token stays in the completed task so that an ack re-sent after a lost
-- reply is idempotent. The done list (wakes aeth_queue_wait_result) is
-- written only when a waiter marked the task ('waited' field).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pfx, upfx, dpfx = ARGV[1], ARGV[2], ARGV[3]
local ret = ARGV[4]
local snow, sexp = tostring(now), tostring(now + tonumber(ret))
local out, comp, rem = {}, {}, {}
for i = 5, #ARGV, 3 do
  local id = ARGV[i]
  local k = pfx .. id
  local f = redis.call('HMGET', k, 'lease', 'state', 'unique_key', 'waited')
  local r = -1
  if f[1] == ARGV[i + 1] then
    if f[2] == 'completed' then
      r = 1
    elseif f[2] == 'active' then
      -- Every path that ends a lease (recovery, nack, dead) deletes the
      -- hash's lease, so an active task with our token holds its lease
      -- entry: one ZREM for the whole batch.
      rem[#rem + 1] = id
      redis.call('HSET', k, 'state', 'completed', 'result', ARGV[i + 2],
        'finished_ms', snow, 'deadline_ms', '0')
      redis.call('PEXPIRE', k, ret)
      comp[#comp + 1] = sexp
      comp[#comp + 1] = id
      local uk = f[3]
      if uk and uk ~= '' and redis.call('GET', upfx .. uk) == id then
        redis.call('DEL', upfx .. uk)
      end
      if f[4] then
        redis.call('RPUSH', dpfx .. id, '1')
        redis.call('PEXPIRE', dpfx .. id, ret)
      end
      r = 1
    end
  end
  out[#out + 1] = r
end
if #rem > 0 then redis.call('ZREM', KEYS[1], unpack(rem)) end
if #comp > 0 then redis.call('ZADD', KEYS[2], unpack(comp)) end
return out
