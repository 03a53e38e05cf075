-- detach: the session's connection dropped; its resume window starts. Matchmaker.detach.
-- KEYS[1] partition prefix; ARGV[1] rules, ARGV[2] now, ARGV[3] match id seed (see lib.lua)
-- ARGV[4] user id, ARGV[5] session id
-- Reply: {}
local uid, session = ARGV[4], ARGV[5]
return run(function()
  local u = load_user(uid)
  if u ~= nil and u.session == session then
    detach(u)
  end
  return done()
end)
