-- unban: lift the user's ban, if it has one. Matchmaker.unban.
-- KEYS[1] partition prefix; ARGV[1] rules, ARGV[2] now, ARGV[3] match id seed (see lib.lua)
-- ARGV[4] user id
-- Reply: {}
local uid = ARGV[4]
return run(function()
  redis.call("HDEL", key("bans"), uid)
  redis.call("ZREM", key("ban_ends"), uid)
  return done()
end)
