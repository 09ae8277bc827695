-- Edit or retract one item, if it is still at the version the caller read.
-- KEYS: stream, items, gone, cursors, timeline (all), timeline (old channel), timeline (new channel), pinned,
--       history (of this id)
-- ARGV: op ("update"/"retract"), id, expected_version, item_json, sort_key, actor, schema_v, maxlen, pinned ("1"/"0"),
--       kind (update, correction, fix, pin, unpin, key_event, retract), legacy_sort_key
-- legacy_sort_key is the key an older release may have indexed the item under (its milliseconds
-- computed in floating point, one short for some times); an entry found under it is re-keyed.
local current = redis.call('HGET', KEYS[2], ARGV[2])
if not current then return {'missing'} end
if string.format('%d', cjson.decode(current)['version']) ~= ARGV[3] then return {'stale'} end
local t = redis.call('TIME')
local ts = string.format('%.0f', t[1] * 1000 + math.floor(t[2] / 1000))
if ARGV[11] ~= ARGV[5] then
  for _, key in ipairs({KEYS[5], KEYS[6], KEYS[8]}) do
    if redis.call('ZREM', key, ARGV[11]) == 1 then redis.call('ZADD', key, 0, ARGV[5]) end
  end
end
local cursor = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[8], '*',
  'op', ARGV[1], 'id', ARGV[2], 'item', ARGV[4], 'actor', ARGV[6], 'v', ARGV[7], 'ts', ts, 'kind', ARGV[10])
if ARGV[1] == 'retract' then
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
  redis.call('ZREM', KEYS[5], ARGV[5])
  redis.call('ZREM', KEYS[6], ARGV[5])
  redis.call('ZREM', KEYS[8], ARGV[5])
else
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
  if KEYS[6] ~= KEYS[7] then
    redis.call('ZREM', KEYS[6], ARGV[5])
    redis.call('ZADD', KEYS[7], 0, ARGV[5])
  end
  if ARGV[9] == '1' then
    redis.call('ZADD', KEYS[8], 0, ARGV[5])
  else
    redis.call('ZREM', KEYS[8], ARGV[5])
  end
end
redis.call('HSET', KEYS[4], ARGV[2], cursor)
redis.call('RPUSH', KEYS[9], cursor)
return {'ok', cursor, ts}
