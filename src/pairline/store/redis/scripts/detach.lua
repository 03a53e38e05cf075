-- detach: the session's connection dropped; its resume window starts. Matchmaker.detach.
-- KEYS[1] partition prefix; ARGV[1…5] see lib.lua
-- ARGV[6] user id, ARGV[7] session id
-- Reply: {}
local uid, session = ARGV[6], ARGV[7]
return run(function()
  local u = load_user(uid)
  if u ~= nil and u.session == session then
    detach(u)
  end
  return done()
end)
