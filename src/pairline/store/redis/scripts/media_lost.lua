-- media_lost: the user's media link failed; health-check the partner now.
-- Matchmaker.media_lost.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] user id, ARGV[6] match id
-- Reply: {}
local uid, mid = ARGV[5], ARGV[6]
return run(function()
  local u = user_or_refuse(uid)
  local m = current_call(u, mid, "media_lost")
  check_media(m, load_user(partner_of(m, uid)))
  return done()
end)
