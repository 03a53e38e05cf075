-- detach: the session's connection dropped; its resume window starts. Matchmaker.detach.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] user id, ARGV[6] session id
-- Reply: {}
local uid, session = ARGV[5], ARGV[6]
return run(function()
  local u = load_user(uid)
  if u ~= nil and u.session == session then
    detach(u)
  end
  return done()
end)
