-- Publish a scheduled item once it is due (or at once when forced): it leaves the schedule
-- and enters the stream and the state in one step, so however many processes try, one wins.
-- KEYS: stream, items, cursors, timeline (all), timeline (channel), pinned,
--       schedule, scheduled items, scheduled actors, history (of this id)
-- ARGV: id, item_json (as published), sort_key, schema_v, maxlen, pinned ("1"/"0"), force ("1"/"0"),
--       expected scheduled json (what the caller read)
local due = redis.call('ZSCORE', KEYS[7], ARGV[1])
if not due then return {'gone'} end
if redis.call('HGET', KEYS[8], ARGV[1]) ~= ARGV[8] then return {'stale'} end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if ARGV[7] ~= '1' and tonumber(due) > now then return {'early'} end
local actor = redis.call('HGET', KEYS[9], ARGV[1]) or ''
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('HDEL', KEYS[8], ARGV[1])
redis.call('HDEL', KEYS[9], ARGV[1])
local ts = string.format('%.0f', now)
local cursor = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*',
  'op', 'publish', 'id', ARGV[1], 'item', ARGV[2], 'actor', actor, 'v', ARGV[4], 'ts', ts, 'kind', 'publish')
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], cursor)
redis.call('ZADD', KEYS[4], 0, ARGV[3])
redis.call('ZADD', KEYS[5], 0, ARGV[3])
if ARGV[6] == '1' then redis.call('ZADD', KEYS[6], 0, ARGV[3]) end
redis.call('RPUSH', KEYS[10], cursor)
return {'ok', cursor, ts, actor}
