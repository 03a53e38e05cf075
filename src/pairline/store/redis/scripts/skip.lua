-- skip: end the call; both re-queued, the partner first (the skipper unless its cool-down
-- starts). Matchmaker.skip.
-- KEYS[1] partition prefix; ARGV[1…4] see lib.lua
-- ARGV[5] user id, ARGV[6] match id
-- Reply: {the user's event order, queue_reply {requeued, position, eta_ms, cooldown_ms}}
local uid, mid = ARGV[5], ARGV[6]
return run(function()
  local u = user_or_refuse(uid)
  local m = call_for(u, mid, "skip")
  if m == nil then  -- the partner ended it first: already over, not counted
    return done_for(u, queue_reply(u, u.status ~= "idle"))
  end
  refuse_if_cooling(uid)
  heard_now(u)
  local partner = partner_of(m, uid)
  end_call(m, "skipped", uid)
  local cooldown = record_skip(uid)
  requeue_partner(partner, m, "skipped")
  local reply
  if cooldown > 0 then
    reply = {0, false, false, cooldown}
  else
    enqueue(u, new_ticket())  -- after the partner it left behind
    reply = queue_reply(u, true)
  end
  pair_requeued({partner, uid})
  return done_for(u, reply)
end)
