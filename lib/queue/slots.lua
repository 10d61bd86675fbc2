-- slots.lua: a tenant's streams running on all gateways
-- (gateway.tenant_max_streams; lib/queue/rate.c). KEYS[1] is a hash with
-- one field per gateway process: "<count> <lease end>", ms of Redis's
-- clock. A gateway that stops renewing (it crashed) drops out when its
-- lease ends, and its streams with it.
-- ARGV[1] this gateway's id; ARGV[2] its count of the tenant's streams
-- now (taking: with the new one); ARGV[3] the lease in ms; ARGV[4] the
-- limit, or 0: only record the count (a release, a renewal).
-- Returns {1, total}: recorded; {0, total}: over the limit, the new one
-- not counted.
if redis.replicate_commands then
  redis.replicate_commands() -- TIME before a write: Redis 3.2 to 4
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me = ARGV[1]
local own, lease, limit = tonumber(ARGV[2]), tonumber(ARGV[3]),
                          tonumber(ARGV[4])
local others = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i] ~= me then
    local n, till = string.match(all[i + 1], '^(%d+) (%d+)$')
    if n and tonumber(till) > now then
      others = others + tonumber(n)
    else
      redis.call('HDEL', KEYS[1], all[i])
    end
  end
end
local ok = 1
if limit > 0 and own + others > limit then
  ok = 0
  own = own - 1
end
if own > 0 then
  redis.call('HSET', KEYS[1], me, string.format('%d %d', own, now + lease))
  redis.call('PEXPIRE', KEYS[1], lease)
else
  redis.call('HDEL', KEYS[1], me)
end
return {ok, own + others}
