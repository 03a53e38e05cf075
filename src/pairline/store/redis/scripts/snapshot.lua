-- snapshot: the user's full state (protocol.md §4), without media. Matchmaker.snapshot.
-- Reads only.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] user id
-- Reply: {status, position, eta_ms, match, cooldown_ms, match users}, where match is
-- {match id, partner id, partner name, common interests} and match users {a, b} (or false)
local uid = ARGV[5]
return run(function()
  local cooling = cooling_ms(uid)
  if cooling == 0 then
    cooling = false
  end
  local u = load_user(uid)
  if u == nil then
    return done({"idle", false, false, false, cooling, false})
  end
  local status = status_name(u)
  local p, e = false, false
  if u.status == "queued" then
    p, e = position(uid)
  elseif status == "queued" then
    p = 1  -- reserved for a proposal being health-checked: next in line
  end
  local m = load_match(u.match)
  local info, users = false, false
  if m ~= nil and m.phase ~= "checking" then
    local partner = load_user(partner_of(m, uid))
    info = {m.id, partner.id, partner.name, m.common}
    users = {m.a, m.b}
  end
  return done({status, p, e, info, cooling, users})
end)
