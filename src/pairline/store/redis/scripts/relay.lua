-- relay: `chat` or `signal` may pass to the partner only within the call; the caller builds
-- the message (signal data stays as the client sent it). Matchmaker.relay.
-- KEYS[1] partition prefix; ARGV[1] rules, ARGV[2] now, ARGV[3] match id seed (see lib.lua)
-- ARGV[4] user id, ARGV[5] match id, ARGV[6] message type
-- Reply: {partner id, partner's node id, the message's event order for the partner}
local uid, mid, kind = ARGV[4], ARGV[5], ARGV[6]
return run(function()
  local u = user_or_refuse(uid)
  local m = current_call(u, mid, kind)
  local partner = load_user(partner_of(m, uid))
  return done({partner.id, partner.node, next_order(partner)})
end)
