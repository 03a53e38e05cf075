-- media_gone: the media server saw the user's media leave the call's room: if its connection is
-- gone too, the call ends now (as at the end of its resume window), else it is health-checked
-- now. Nothing if that call is already over. Matchmaker.media_gone.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] user id, ARGV[6] match id
-- Reply: {}
local uid, mid = ARGV[5], ARGV[6]
return run(function()
  local u = load_user(uid)
  if u == nil or u.match ~= mid then
    return done()
  end
  local m = load_match(mid)
  if m == nil or m.phase ~= "confirmed" then
    return done()
  end
  if u.presence == "away" then
    resume_window_over(uid)
  else
    check_media(m, u)
  end
  return done()
end)
