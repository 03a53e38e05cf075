-- unban: lift the user's ban, if it has one. Matchmaker.unban.
-- KEYS[1] partition prefix; ARGV[1…5] see lib.lua
-- ARGV[6] user id
-- Reply: {}
local uid = ARGV[6]
return run(function()
  redis.call("HDEL", key("bans"), uid)
  redis.call("ZREM", key("ban_ends"), uid)
  return done()
end)
