-- One staff write against a token's rate limit, shared by every process (GCRA).
-- KEYS: the token's limit key
-- ARGV: rate (writes per second), burst
-- Returns 0 when the write may go ahead, else the microseconds until it may.
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local interval = 1000000 / tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - tolerance > now then return math.ceil(next_tat - tolerance - now) end
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil(tolerance / 1000) + 1000)
return 0
