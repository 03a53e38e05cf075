-- relay: `chat` or `signal` may pass to the partner only within the call; the caller builds
-- the message (signal data stays as the client sent it). Matchmaker.relay.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] user id, ARGV[6] match id, ARGV[7] message type, ARGV[8] the message (JSON), which
-- is handed to the partner's node if that is another (see lib.lua's hand-off)
-- Reply: {partner id, partner's node id, the message's event order for the partner}
local uid, mid, kind, message = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
return run(function()
  local u = user_or_refuse(uid)
  local m = current_call(u, mid, kind)
  local partner = load_user(partner_of(m, uid))
  local order = next_order(partner)
  hand_off(partner.node, {"relay", partner.id, partner.node, order, message})
  return done({partner.id, partner.node, order})
end)
