-- Publish one item: append the stream entry and store the item state in one step.
-- KEYS: stream, items, gone, fingerprints, cursors, timeline (all), timeline (channel), pinned
-- ARGV: id, item_json, fingerprint, sort_key, actor, schema_v, maxlen, pinned ("1"/"0")
local known = redis.call('HGET', KEYS[4], ARGV[1])
if known then
  if known ~= ARGV[3] then return {'conflict'} end
  local live = redis.call('HGET', KEYS[2], ARGV[1])
  if not live then return {'retracted'} end
  return {'same', live, redis.call('HGET', KEYS[5], ARGV[1])}
end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 or redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
  return {'conflict'}
end
local t = redis.call('TIME')
local ts = string.format('%.0f', t[1] * 1000 + math.floor(t[2] / 1000))
local cursor = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[7], '*',
  'op', 'publish', 'id', ARGV[1], 'item', ARGV[2], 'actor', ARGV[5], 'v', ARGV[6], 'ts', ts)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[5], ARGV[1], cursor)
redis.call('ZADD', KEYS[6], 0, ARGV[4])
redis.call('ZADD', KEYS[7], 0, ARGV[4])
if ARGV[8] == '1' then redis.call('ZADD', KEYS[8], 0, ARGV[4]) end
return {'ok', cursor, ts}
