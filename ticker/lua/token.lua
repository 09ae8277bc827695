-- Look a staff token up and record its use; for a write, also take one write from its
-- limit: one round trip (use_token in _token.lua).
-- KEYS: token-hash, tokens, token-used, rates
-- ARGV: hash, now (ISO 8601)[, rate (writes per second), burst]
--#include _token
return use_token(KEYS, ARGV)
