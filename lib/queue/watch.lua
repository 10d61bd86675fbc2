-- Read a task for aeth_queue_wait_result() and, unless it is finished,
-- mark it 'waited' so that ack/nack/recovery push a token on its done
-- list. Checking and marking in one script leaves no window in which the
-- task could finish unseen. KEYS: 1 task hash. Returns HGETALL.
local st = redis.call('HGET', KEYS[1], 'state')
if st and st ~= 'completed' and st ~= 'dead' then
  redis.call('HSET', KEYS[1], 'waited', 1)
end
return redis.call('HGETALL', KEYS[1])
