-- Look a staff token up by its hash and record its use, in one round trip.
-- KEYS: token-hash, tokens, token-used
-- ARGV: hash, now (ISO 8601)
local name = redis.call('HGET', KEYS[1], ARGV[1])
if not name then return false end
local record = redis.call('HGET', KEYS[2], name)
if not record then return false end
redis.call('HSET', KEYS[3], name, ARGV[2])
return {name, record}
