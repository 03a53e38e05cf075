-- renew_session: give the user's session a new id (a client too far behind to replay).
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] user id, ARGV[6] the new session id
-- Reply: {}
local uid, session = ARGV[5], ARGV[6]
return run(function()
  local u = load_user(uid)
  if u ~= nil then
    set_user(u, "session", session)
  end
  return done()
end)
