-- rate.lua: one request of a tenant against its requests-per-second
-- limit, shared by every gateway on this Redis (lib/queue/rate.c). A
-- token bucket kept as one number (GCRA): the time, in microseconds of
-- Redis's clock, at which the bucket would be full again. It holds
-- `rate` tokens and gains `rate` a second, as the gateway's own bucket.
-- KEYS[1] the tenant's bucket; ARGV[1] the rate per second (>= 1).
-- Returns {1, 0}: taken; {0, ms}: empty, one token back in ms.
if redis.replicate_commands then
  redis.replicate_commands() -- TIME before a write: Redis 3.2 to 4
end
local rate = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local step = 1000000 / rate
local full = tonumber(redis.call('GET', KEYS[1]) or '') or now
if full < now then full = now end
local after = full + step
if after - now > 1000000 then
  return {0, math.ceil((after - now - 1000000) / 1000)}
end
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX',
           math.ceil((after - now) / 1000) + 1000)
return {1, 0}
