-- One page of the timeline, newest first, with the stream cursor it is current as of.
-- KEYS: timeline, items, stream, pinned
-- ARGV: max (lex bound: "+" or "(" .. sort_key), limit, with_pinned ("1"/"0")
local cursor = '0-0'
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
if #last > 0 then cursor = last[1][1] end
local out = {cursor}
local keys = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[1], '-', 'LIMIT', 0, tonumber(ARGV[2]) + 1)
out[2] = #keys
for _, key in ipairs(keys) do
  out[#out + 1] = key
  out[#out + 1] = redis.call('HGET', KEYS[2], string.sub(key, 17)) or ''
end
if ARGV[3] == '1' then
  for _, key in ipairs(redis.call('ZREVRANGEBYLEX', KEYS[4], '+', '-', 'LIMIT', 0, 100)) do
    out[#out + 1] = redis.call('HGET', KEYS[2], string.sub(key, 17)) or ''
  end
end
return out
