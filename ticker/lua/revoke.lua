-- Revoke a staff token: its hash, its record and its last use go together.
-- KEYS: token-hash, tokens, token-used
-- ARGV: token hash, name
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
