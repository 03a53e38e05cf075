-- renew_session: give the user's session a new id (a client too far behind to replay).
-- KEYS[1] partition prefix; ARGV[1] rules, ARGV[2] now, ARGV[3] match id seed (see lib.lua)
-- ARGV[4] user id, ARGV[5] the new session id
-- Reply: {}
local uid, session = ARGV[4], ARGV[5]
return run(function()
  local u = load_user(uid)
  if u ~= nil then
    set_user(u, "session", session)
  end
  return done()
end)
