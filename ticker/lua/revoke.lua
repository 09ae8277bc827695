-- Revoke a staff token: its hash, its record, its last use and its write limit go together.
-- KEYS: token-hash, tokens, token-used, rates
-- ARGV: token hash, name
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
return 1
