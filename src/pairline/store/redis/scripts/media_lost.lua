-- media_lost: the user's media link failed; health-check the partner now.
-- Matchmaker.media_lost.
-- KEYS[1] partition prefix; ARGV[1] rules, ARGV[2] now, ARGV[3] match id seed (see lib.lua)
-- ARGV[4] user id, ARGV[5] match id
-- Reply: {}
local uid, mid = ARGV[4], ARGV[5]
return run(function()
  local u = user_or_refuse(uid)
  local m = current_call(u, mid, "media_lost")
  local partner = load_user(partner_of(m, uid))
  if partner.presence ~= "online" or probe_index(m, partner.id) then
    return done()  -- already away (the resume window decides) or already being checked
  end
  m.probing[#m.probing + 1] = {partner.id, NOW}
  save_probing(m)
  emit({"probe", partner.id, partner.node})
  set_deadline("media_check", mid, NOW + RULES.health_timeout_ms)
  return done()
end)
