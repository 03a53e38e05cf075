-- ack: the user acked its `matched`; the second ack confirms the match. Matchmaker.ack.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] user id, ARGV[6] match id
-- Reply: {}
local uid, mid = ARGV[5], ARGV[6]
return run(function()
  local m = load_match(mid)
  if m == nil or m.phase ~= "proposed" or (uid ~= m.a and uid ~= m.b) then
    return done()
  end
  m.acked[uid] = true
  save_acked(m)
  if not (m.acked[m.a] and m.acked[m.b]) then
    return done()
  end
  cancel_deadline("ack", mid)
  set_match(m, "phase", "confirmed")
  set_match(m, "confirmed", NOW)
  local a, b = load_user(m.a), load_user(m.b)
  set_user(a, "status", "in_call")
  set_user(b, "status", "in_call")
  redis.call("ZADD", key("pairings"), int(NOW), mid)
  emit({"confirmed", match_repr(m), a.node, b.node, next_order(a), next_order(b)})
  return done()
end)
