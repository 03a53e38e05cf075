-- renew_session: give the user's session a new id (a client too far behind to replay).
-- KEYS[1] partition prefix; ARGV[1…5] see lib.lua
-- ARGV[6] user id, ARGV[7] the new session id
-- Reply: {}
local uid, session = ARGV[6], ARGV[7]
return run(function()
  local u = load_user(uid)
  if u ~= nil then
    set_user(u, "session", session)
  end
  return done()
end)
