-- unblock: lift the block one user set on another; a block the other way stays.
-- Matchmaker.unblock.
-- KEYS[1] partition prefix; ARGV[1] rules, ARGV[2] now, ARGV[3] match id seed (see lib.lua)
-- ARGV[4] blocker, ARGV[5] blocked
-- Reply: {}
local blocker, blocked = ARGV[4], ARGV[5]
return run(function()
  redis.call("SREM", key("blocks", blocker), blocked)
  return done()
end)
