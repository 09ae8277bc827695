-- Change or cancel a scheduled item, if it is still scheduled as the caller read it.
-- KEYS: schedule, scheduled items, scheduled actors, fingerprints
-- ARGV: op ("edit"/"cancel"), id, expected_json, new_json, publish_at_ms
local current = redis.call('HGET', KEYS[2], ARGV[2])
if not current then return {'missing'} end
if current ~= ARGV[3] then return {'stale'} end
if ARGV[1] == 'cancel' then
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
  redis.call('HDEL', KEYS[4], ARGV[2])
  return {'ok'}
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[2])
return {'ok'}
