-- Look a staff token up by its hash and record its use; for a write, also take one
-- write from the token's rate limit (GCRA, shared by every process): one round trip.
-- KEYS: token-hash, tokens, token-used, rates
-- ARGV: hash, now (ISO 8601)[, rate (writes per second), burst]
-- Returns false for an unknown or revoked token, else {name, record, wait}: wait is 0
-- when the write may go ahead (or no write was asked for), else the microseconds until
-- it may, and nothing was taken.
local name = redis.call('HGET', KEYS[1], ARGV[1])
if not name then return false end
local record = redis.call('HGET', KEYS[2], name)
if not record then return false end
redis.call('HSET', KEYS[3], name, ARGV[2])
if not ARGV[3] then return {name, record, 0} end
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local interval = 1000000 / tonumber(ARGV[3])
local tolerance = interval * tonumber(ARGV[4])
local tat = tonumber(redis.call('HGET', KEYS[4], name)) or now
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - tolerance > now then return {name, record, math.ceil(next_tat - tolerance - now)} end
redis.call('HSET', KEYS[4], name, string.format('%.0f', next_tat))
return {name, record, 0}
