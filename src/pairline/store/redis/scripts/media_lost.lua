-- media_lost: the user's media link failed; health-check the partner now.
-- Matchmaker.media_lost.
-- KEYS[1] partition prefix; ARGV[1…5] see lib.lua
-- ARGV[6] user id, ARGV[7] match id
-- Reply: {}
local uid, mid = ARGV[6], ARGV[7]
return run(function()
  local u = user_or_refuse(uid)
  local m = current_call(u, mid, "media_lost")
  check_media(m, load_user(partner_of(m, uid)))
  return done()
end)
