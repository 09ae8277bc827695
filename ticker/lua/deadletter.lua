-- Move a consumer group's entry to its dead-letter stream and acknowledge it, in one step.
-- KEYS: dead-letter stream, stream
-- ARGV: group, cursor, maxlen, then field/value pairs of the dead-letter entry
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
return id
