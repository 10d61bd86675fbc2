-- Delete a task that is not active. KEYS: 1 task hash, 2 pending,
-- 3 scheduled, 4 retry, 5 dead, 6 completed, 7 done list.
-- ARGV: 1 id, 2 unique key prefix.
-- Returns 1, 0 when not found, -1 when active.
local st = redis.call('HGET', KEYS[1], 'state')
if not st then
  -- A malformed leftover may still sit in a list or set.
  local n = redis.call('LREM', KEYS[2], 0, ARGV[1])
  for i = 3, 6 do n = n + redis.call('ZREM', KEYS[i], ARGV[1]) end
  if n > 0 then return 1 end
  return 0
end
if st == 'active' then return -1 end
redis.call('LREM', KEYS[2], 0, ARGV[1])
for i = 3, 6 do redis.call('ZREM', KEYS[i], ARGV[1]) end
local uk = redis.call('HGET', KEYS[1], 'unique_key')
if uk and uk ~= '' and redis.call('GET', ARGV[2] .. uk) == ARGV[1] then
  redis.call('DEL', ARGV[2] .. uk)
end
redis.call('DEL', KEYS[1], KEYS[7])
return 1
