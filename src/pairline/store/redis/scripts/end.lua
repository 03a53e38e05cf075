-- end: `end`, `block` and `report` end the call; the user goes idle, the partner is
-- re-queued; `block` then blocks the partner for good. Matchmaker.end.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] user id, ARGV[6] match id, ARGV[7] "1" to block
-- Reply: {the user's event order, {}}
local uid, mid, block = ARGV[5], ARGV[6], ARGV[7] == "1"
return run(function()
  local u = user_or_refuse(uid)
  local m = call_for(u, mid, block and "block" or "end")
  local partner
  if m == nil then  -- already over: a late end takes the user out of the queue again
    partner = u.last_partner
    withdraw(u)
  else
    partner = partner_of(m, uid)
    end_call(m, "ended", uid)
    requeue_partner(partner, m, "ended")
    pair_requeued({partner})
  end
  if block and partner then
    redis.call("SADD", key("blocks", uid), partner)
    emit({"blocked", uid, partner, mid})
  end
  return done_for(u)
end)
