-- Publish one item: append the stream entry and store the item state in one step;
-- or, with a publish_at time, keep it aside in the schedule (nothing appended).
-- KEYS: stream, items, gone, fingerprints, cursors, timeline (all), timeline (channel), pinned,
--       schedule (sorted set), scheduled items, scheduled actors, history (of this id)
-- ARGV: id, item_json, fingerprint, sort_key, actor, schema_v, maxlen, pinned ("1"/"0"), publish_at_ms ("" = now)
local function head()
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last > 0 then return last[1][1] end
  return '0-0'
end
local known = redis.call('HGET', KEYS[4], ARGV[1])
if known then
  if known ~= ARGV[3] then return {'conflict'} end
  local live = redis.call('HGET', KEYS[2], ARGV[1])
  if live then return {'same', live, redis.call('HGET', KEYS[5], ARGV[1])} end
  local waiting = redis.call('HGET', KEYS[10], ARGV[1])
  if waiting then return {'same-scheduled', waiting, head()} end
  return {'retracted'}
end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 or redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1
   or redis.call('HEXISTS', KEYS[10], ARGV[1]) == 1 then
  return {'conflict'}
end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
if ARGV[9] ~= '' then
  redis.call('ZADD', KEYS[9], ARGV[9], ARGV[1])
  redis.call('HSET', KEYS[10], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[11], ARGV[1], ARGV[5])
  return {'scheduled', head()}
end
local t = redis.call('TIME')
local ts = string.format('%.0f', t[1] * 1000 + math.floor(t[2] / 1000))
local cursor = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[7], '*',
  'op', 'publish', 'id', ARGV[1], 'item', ARGV[2], 'actor', ARGV[5], 'v', ARGV[6], 'ts', ts, 'kind', 'publish')
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[5], ARGV[1], cursor)
redis.call('ZADD', KEYS[6], 0, ARGV[4])
redis.call('ZADD', KEYS[7], 0, ARGV[4])
if ARGV[8] == '1' then redis.call('ZADD', KEYS[8], 0, ARGV[4]) end
redis.call('RPUSH', KEYS[12], cursor)
return {'ok', cursor, ts}
