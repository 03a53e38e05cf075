-- unblock: lift the block one user set on another; a block the other way stays.
-- Matchmaker.unblock.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] blocker, ARGV[6] blocked
-- Reply: {}
local blocker, blocked = ARGV[5], ARGV[6]
return run(function()
  redis.call("SREM", key("blocks", blocker), blocked)
  return done()
end)
