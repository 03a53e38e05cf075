-- unblock: lift the block one user set on another; a block the other way stays.
-- Matchmaker.unblock.
-- KEYS[1] partition prefix; ARGV[1…5] see lib.lua
-- ARGV[6] blocker, ARGV[7] blocked
-- Reply: {}
local blocker, blocked = ARGV[6], ARGV[7]
return run(function()
  redis.call("SREM", key("blocks", blocker), blocked)
  return done()
end)
