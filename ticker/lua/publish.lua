-- Publish one item: append the stream entry and store the item state in one step;
-- or, with a publish_at time, keep it aside in the schedule (nothing appended).
-- KEYS: stream, items, gone, fingerprints, cursors, timeline (all), timeline (channel), pinned,
--       schedule (sorted set), scheduled items, scheduled actors, history (of this id)
-- ARGV: id, item_json, fingerprint, sort_key, actor, schema_v, maxlen, pinned ("1"/"0"), publish_at_ms ("" = now)
-- With a staff token, checked first in the same step (the publish's round trip is the token's):
-- KEYS 13-16: token-hash, tokens, token-used, rates; ARGV 10-14: hash, now (ISO 8601), rate,
-- burst, the scopes that allow a publish (space-separated). An unknown token gives
-- {'token-unknown'}; one without those scopes or over its write limit {'token-refused', name,
-- record, wait}, and nothing is written; else the token's name is the actor.
--#include _token
local actor = ARGV[5]
if ARGV[10] then
  local staff = use_token({KEYS[13], KEYS[14], KEYS[15], KEYS[16]}, {ARGV[10], ARGV[11], ARGV[12], ARGV[13]})
  if not staff then return {'token-unknown'} end
  if staff[3] ~= 0 or not grants(staff[2], ARGV[14]) then return {'token-refused', staff[1], staff[2], staff[3]} end
  actor = staff[1]
end
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
  redis.call('HSET', KEYS[11], ARGV[1], actor)
  return {'scheduled', head()}
end
local t = redis.call('TIME')
local ts = string.format('%.0f', t[1] * 1000 + math.floor(t[2] / 1000))
local cursor = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[7], '*',
  'op', 'publish', 'id', ARGV[1], 'item', ARGV[2], 'actor', actor, 'v', ARGV[6], 'ts', ts, 'kind', 'publish')
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[5], ARGV[1], cursor)
redis.call('ZADD', KEYS[6], 0, ARGV[4])
redis.call('ZADD', KEYS[7], 0, ARGV[4])
if ARGV[8] == '1' then redis.call('ZADD', KEYS[8], 0, ARGV[4]) end
redis.call('RPUSH', KEYS[12], cursor)
return {'ok', cursor, ts}
