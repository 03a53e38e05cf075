-- unban: lift the user's ban, if it has one. Matchmaker.unban.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] user id
-- Reply: {}
local uid = ARGV[5]
return run(function()
  redis.call("HDEL", key("bans"), uid)
  redis.call("ZREM", key("ban_ends"), uid)
  return done()
end)
