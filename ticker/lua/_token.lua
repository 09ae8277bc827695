-- Staff tokens, for the scripts that include this file (token.lua, publish.lua).
--
-- use_token(k, a): look a token up by its hash and record its use; for a write, also take
-- one write from the token's rate limit (GCRA, shared by every process).
--   k: token-hash, tokens, token-used, rates
--   a: hash, now (ISO 8601)[, rate (writes per second), burst]
-- Returns false for an unknown or revoked token, else {name, record, wait}: wait is 0
-- when the write may go ahead (or no write was asked for), else the microseconds until
-- it may, and nothing was taken.
local function use_token(k, a)
  local name = redis.call('HGET', k[1], a[1])
  if not name then return false end
  local record = redis.call('HGET', k[2], name)
  if not record or cjson.decode(record).hash ~= a[1] then return false end
  redis.call('HSET', k[3], name, a[2])
  if not a[3] then return {name, record, 0} end
  local t = redis.call('TIME')
  local now = t[1] * 1000000 + t[2]
  local interval = 1000000 / tonumber(a[3])
  local tolerance = interval * tonumber(a[4])
  local tat = tonumber(redis.call('HGET', k[4], name)) or now
  if tat < now then tat = now end
  local next_tat = tat + interval
  if next_tat - tolerance > now then return {name, record, math.ceil(next_tat - tolerance - now)} end
  redis.call('HSET', k[4], name, string.format('%.0f', next_tat))
  return {name, record, 0}
end

-- Whether a token's record (JSON) has one of the space-separated scopes in `allowed`
-- (the caller names every scope that allows the write: ticker.auth keeps that rule).
local function grants(record, allowed)
  local wanted = {}
  for scope in string.gmatch(allowed, '%S+') do wanted[scope] = true end
  for _, scope in ipairs(cjson.decode(record).scopes) do
    if wanted[scope] then return true end
  end
  return false
end
